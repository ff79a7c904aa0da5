// WhatsApp simulator: sends messages through the signed-webhook path and
// polls what the fake Twilio API delivered to this phone.
(function () {
  "use strict";
  const phoneBox = document.getElementById("phone");
  const sendUrl = phoneBox.dataset.sendUrl;
  const feedUrl = phoneBox.dataset.feedUrl;
  const chat = document.getElementById("chat");
  const phone = document.getElementById("sim-phone");
  const name = document.getElementById("sim-name");
  const text = document.getElementById("sim-text");
  let lastId = 0;

  function render(m) {
    const li = document.createElement("li");
    li.className = "bubble " + (m.direction === "in" ? "me" : "them");
    li.dataset.id = m.id;
    const body = document.createElement("div");
    body.textContent = m.body;  // text only: never parsed as HTML
    const time = document.createElement("time");
    time.textContent = new Date(m.at).toLocaleTimeString();
    li.append(body, time);
    chat.append(li);
    chat.scrollTop = chat.scrollHeight;
  }

  async function poll() {
    try {
      const r = await fetch(feedUrl + "?phone=" + encodeURIComponent(phone.value) + "&after=" + lastId);
      const data = await r.json();
      for (const m of data.messages) { render(m); lastId = Math.max(lastId, m.id); }
    } catch (e) { /* server restarting: try again on the next tick */ }
  }

  function restart() {
    chat.textContent = "";
    lastId = 0;
    poll();
  }

  document.getElementById("composer").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const body = text.value;
    if (!body.trim()) return;
    text.value = "";
    const r = await fetch(sendUrl, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({phone: phone.value, name: name.value, body: body}),
    });
    if (!r.ok) { alert("Not sent: " + (await r.text())); }
    poll();
  });
  phone.addEventListener("change", restart);
  restart();
  setInterval(poll, 700);
})();
