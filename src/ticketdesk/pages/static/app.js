// ticketdesk: what scripts add to pages that work without them. No library, no build.
(function () {
  "use strict";

  // A form that cannot be undone asks first (data-confirm: the question).
  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // Times: relative ("4 min ago") in the viewer's words, the exact local time on hover.
  var words = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  function relative(date) {
    var seconds = (date.getTime() - Date.now()) / 1000;
    var steps = [[60, "second"], [60, "minute"], [24, "hour"], [7, "day"], [4.35, "week"], [12, "month"]];
    var value = seconds;
    for (var i = 0; i < steps.length; i++) {
      if (Math.abs(value) < steps[i][0]) return words.format(Math.round(value), steps[i][1]);
      value /= steps[i][0];
    }
    return words.format(Math.round(value), "year");
  }
  function showTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (node) {
      var date = new Date(node.getAttribute("datetime"));
      if (isNaN(date)) return;
      node.title = date.toLocaleString();
      node.textContent = relative(date);
    });
  }
  showTimes(document);
  setInterval(function () { showTimes(document); }, 30000);

  // The composer: the internal-note switch changes its look and its buttons' words (a note
  // never takes the ticket: "Assign to me" goes with a reply).
  var internal = document.getElementById("internal");
  if (internal) {
    var composer = document.getElementById("composer");
    var send = document.getElementById("send");
    var sendResolve = document.getElementById("send-resolve");
    var assign = document.getElementById("assign");
    var update = function () {
      composer.classList.toggle("note-mode", internal.checked);
      send.textContent = internal.checked ? "Save note" : "Send";
      if (sendResolve) sendResolve.textContent = internal.checked ? "Save note and resolve" : "Send and resolve";
      if (assign) assign.closest("label").hidden = internal.checked;
    };
    internal.addEventListener("change", update);
    update();
  }

  // Ctrl+Enter (Cmd+Enter) sends, as the first button would.
  var composerForm = document.getElementById("composer-form");
  if (composerForm) {
    composerForm.addEventListener("keydown", function (event) {
      if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
      event.preventDefault();
      composerForm.requestSubmit(composerForm.querySelector("button[type=submit]"));
    });
  }

  // Drafts: what is typed in a form with data-draft is kept in this browser until it is sent,
  // so a reload, a crash or a wrong click loses nothing.
  document.querySelectorAll("form[data-draft]").forEach(function (form) {
    var key = "ticketdesk-draft:" + form.dataset.draft;
    var fields = form.querySelectorAll("textarea, input[type=text], input:not([type])");
    var saved = {};
    try { saved = JSON.parse(localStorage.getItem(key) || "{}"); } catch (e) { saved = {}; }
    // Sent: the draft is done (a refused form comes back with its text filled in by the server).
    form.addEventListener("submit", function () { localStorage.removeItem(key); });
    fields.forEach(function (field) {
      if (!field.name) return;
      if (!field.value && saved[field.name]) field.value = saved[field.name];
      field.addEventListener("input", function () {
        var values = {};
        fields.forEach(function (f) { if (f.name && f.value) values[f.name] = f.value; });
        if (Object.keys(values).length) localStorage.setItem(key, JSON.stringify(values));
        else localStorage.removeItem(key);
      });
    });
  });

  // Counters: a field with a length limit says how much is left, and says so before it is
  // too long, instead of cutting what is typed.
  document.querySelectorAll("[data-max]").forEach(function (field) {
    var max = Number(field.dataset.max);
    var counter = document.getElementById(field.id + "-count");
    if (!counter) return;
    var update = function () {
      var left = max - Array.from(field.value).length;
      counter.textContent = left >= 0 ? left + " characters left" : -left + " characters too many";
      counter.classList.toggle("over", left < 0);
      field.setAttribute("aria-invalid", left < 0 ? "true" : "false");
    };
    field.addEventListener("input", update);
    update();
  });

  // Live: the queue and the ticket page follow the event stream (staff only).
  var live = document.body.dataset.live;
  function typing() {
    var active = document.activeElement;
    return active && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) && active.value;
  }
  // One fetch of the page, then each of its parts named by `selectors` replaced.
  function refresh(selectors) {
    return fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var page = new DOMParser().parseFromString(html, "text/html");
        selectors.forEach(function (selector) {
          var fresh = page.querySelector(selector);
          var current = document.querySelector(selector);
          if (!fresh || !current) return;
          var known = {};
          current.querySelectorAll("[data-id],[id^=message-]").forEach(function (n) { known[n.dataset.id || n.id] = true; });
          fresh.querySelectorAll("[data-id],[id^=message-]").forEach(function (n) {
            if (!known[n.dataset.id || n.id]) n.classList.add("fresh");
          });
          current.replaceWith(fresh);
          showTimes(fresh);
        });
      });
  }
  var ticket = document.body.dataset.ticket;
  if (live && window.EventSource) {
    var pending = null;
    // From what the page already shows on: opening it sends nothing old.
    var stream = new EventSource("/events/stream?after=" + (document.body.dataset.after || "0"));
    stream.onmessage = null;
    var onEvent = function (event) {
      var data = JSON.parse(event.data);
      if (live === "ticket" && String(data.ticket_id) !== ticket) return;
      if (pending) return;
      pending = setTimeout(function () {
        pending = null;
        if (live === "queue") refresh(["#queue-results", ".views"]);
        else refresh(["#thread"]);
      }, 150);
    };
    ["created", "status", "assignee", "priority", "message", "note", "rating", "tags"].forEach(function (kind) {
      stream.addEventListener(kind, onEvent);
    });
  }

  // The collision notice: say every five seconds that this ticket is open here (and whether
  // its agent is writing), and show who else has it open.
  var presence = document.getElementById("presence");
  if (presence && ticket) {
    var lastKey = 0;
    var box = document.getElementById("message");
    if (box) box.addEventListener("input", function () { lastKey = Date.now(); });
    var tell = function () {
      var state = box && box.value && Date.now() - lastKey < 10000 ? "typing" : "viewing";
      var body = new URLSearchParams({ state: state });
      fetch("/app/tickets/" + ticket + "/presence", { method: "POST", body: body, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : []; })
        .then(function (others) {
          presence.textContent = others.map(function (other) {
            return other.username + (other.state === "typing" ? " is replying" : " is viewing this ticket");
          }).join(" · ");
        })
        .catch(function () {});
    };
    tell();
    setInterval(tell, 5000);
  }

  // Keyboard: j/k move in the queue, Enter opens, r replies, n writes a note, / searches, ? helps.
  var rows = function () { return Array.prototype.slice.call(document.querySelectorAll("#queue-rows tr")); };
  var selected = -1;
  function select(index) {
    var all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (row, i) { row.classList.toggle("selected", i === selected); });
    all[selected].scrollIntoView({ block: "nearest" });
  }
  var help = null;
  function showHelp() {
    if (!help) {
      help = document.createElement("dialog");
      help.setAttribute("aria-label", "Keyboard shortcuts");
      help.innerHTML = "<h2>Keyboard shortcuts</h2><ul>" +
        "<li><kbd>j</kbd> / <kbd>k</kbd>: next / previous ticket</li><li><kbd>Enter</kbd>: open it</li>" +
        "<li><kbd>r</kbd>: reply</li><li><kbd>n</kbd>: internal note</li><li><kbd>/</kbd>: search</li>" +
        "<li><kbd>?</kbd>: this list</li></ul><form method=\"dialog\"><button>Close</button></form>";
      document.body.appendChild(help);
    }
    help.showModal();
  }
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) || target.isContentEditable) return;
    var message = document.getElementById("message");
    switch (event.key) {
      case "j": select(selected + 1); break;
      case "k": select(selected - 1); break;
      case "Enter":
        if (selected >= 0) { var link = rows()[selected].querySelector("a"); if (link) link.click(); }
        return;
      case "r":
      case "n":
        if (!message) return;
        if (internal) { internal.checked = event.key === "n"; internal.dispatchEvent(new Event("change")); }
        message.focus();
        break;
      case "/":
        var search = document.getElementById("q");
        if (!search) return;
        search.focus();
        break;
      case "?": showHelp(); break;
      default: return;
    }
    event.preventDefault();
  });
  void typing;
})();
