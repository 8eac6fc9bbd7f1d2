// Casa Pronta's only script: "Ask Sophie" buttons open the chat through the
// widget's public API, and logging out forgets the visitor's conversation on
// this browser (a shared computer's next visitor starts afresh).
const CHAT_STORAGE_KEY = "sophie-chat:session:/ws/chat/";

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-open-chat]");
  const chat = document.querySelector("sophie-chat");
  if (button && chat && typeof chat.open === "function") chat.open();
});

document.addEventListener("submit", (event) => {
  if (!event.target.closest("[data-forget-chat]")) return;
  try {
    localStorage.removeItem(CHAT_STORAGE_KEY);
  } catch {
    // Storage disabled: nothing was kept.
  }
});
