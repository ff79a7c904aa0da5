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
  const status = document.getElementById("sim-status");
  let lastId = 0;

  const shown = new Set();
  let busy = false;

  // WhatsApp's *bold*, built as DOM nodes: the text is never parsed as HTML.
  function fill(el, text) {
    text.split(/(\*[^*\n]+\*)/).forEach(function (part) {
      if (/^\*[^*\n]+\*$/.test(part)) {
        const strong = document.createElement("strong");
        strong.textContent = part.slice(1, -1);
        el.append(strong);
      } else {
        el.append(document.createTextNode(part));
      }
    });
  }

  function render(m) {
    if (shown.has(m.id)) return;
    shown.add(m.id);
    const li = document.createElement("li");
    li.className = "bubble " + (m.direction === "in" ? "me" : "them");
    li.dataset.id = m.id;
    const body = document.createElement("div");
    fill(body, m.body);
    const time = document.createElement("time");
    time.textContent = new Date(m.at).toLocaleTimeString();
    li.append(body, time);
    chat.append(li);
    chat.scrollTop = chat.scrollHeight;
  }

  async function poll() {
    if (busy) return;  // one poll at a time, or a reply could show twice
    busy = true;
    try {
      const r = await fetch(feedUrl + "?phone=" + encodeURIComponent(phone.value) + "&after=" + lastId);
      const data = await r.json();
      for (const m of data.messages) { render(m); lastId = Math.max(lastId, m.id); }
    } catch (e) { /* server restarting: try again on the next tick */ }
    busy = false;
  }

  function restart() {
    chat.textContent = "";
    shown.clear();
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
    if (!r.ok) {
      const data = await r.json().catch(function () { return {}; });
      status.textContent = "Not sent: " + (data.error || r.status);
    } else {
      status.textContent = "";
    }
    poll();
  });
  phone.addEventListener("change", restart);
  restart();
  setInterval(poll, 700);
})();
