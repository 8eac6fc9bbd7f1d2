// "Ask Sophie" buttons open the chat through the widget's public API.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-open-chat]");
  const chat = document.querySelector("sophie-chat");
  if (button && chat && typeof chat.open === "function") chat.open();
});
