// quai's only script. Every page works without it; it adds confirmation
// before buttons that change something, "load earlier" in place and the
// live log follow over Server-Sent Events.
"use strict";

document.addEventListener("submit", function (ev) {
  var msg = ev.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    ev.preventDefault();
  }
});

(function () {
  var log = document.getElementById("log");
  if (!log) {
    return;
  }
  var runID = log.getAttribute("data-run");

  // Load earlier parts of the log in place of following the link.
  var earlier = document.getElementById("earlier");
  if (earlier) {
    earlier.addEventListener("click", function (ev) {
      ev.preventDefault();
      var before = log.getAttribute("data-start");
      fetch("/runs/" + runID + "/log?fragment=1&before=" + before, { credentials: "same-origin" })
        .then(function (resp) {
          if (!resp.ok) {
            throw new Error("HTTP " + resp.status);
          }
          var start = resp.headers.get("X-Log-Start");
          return resp.text().then(function (html) {
            log.insertAdjacentHTML("afterbegin", html);
            log.setAttribute("data-start", start);
            if (start === "0") {
              earlier.parentNode.removeChild(earlier);
            }
          });
        })
        .catch(function (err) {
          earlier.textContent = "loading failed (" + err.message + "); try again";
        });
    });
  }

  if (log.getAttribute("data-live") !== "true" || !window.EventSource) {
    return;
  }
  var follow = document.getElementById("follow");
  var status = document.getElementById("status");
  var took = document.getElementById("took");
  var atBottom = function () {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  };
  var src = new EventSource("/runs/" + runID + "/events?offset=" + log.getAttribute("data-end"));
  if (follow) {
    follow.textContent = "following live";
  }
  src.addEventListener("log", function (ev) {
    var stick = atBottom();
    // The server renders and escapes the lines.
    log.insertAdjacentHTML("beforeend", ev.data);
    log.setAttribute("data-end", ev.lastEventId);
    if (stick) {
      window.scrollTo(0, document.body.scrollHeight);
    }
  });
  src.addEventListener("status", function (ev) {
    var st = JSON.parse(ev.data);
    if (status) {
      status.textContent = st.status + (st.error ? ": " + st.error : "");
      status.className = "status-" + st.status;
    }
    if (took && st.took) {
      took.textContent = st.took;
    }
    (st.steps || []).forEach(function (step) {
      var row = document.querySelector('tr[data-step="' + CSS.escape(step.name) + '"]');
      if (!row) {
        return;
      }
      var cell = row.querySelector(".step-status");
      cell.textContent = step.status;
      cell.className = "step-status status-" + step.status;
      row.querySelector(".step-took").textContent = step.took || "";
    });
  });
  src.addEventListener("end", function () {
    src.close();
    if (follow) {
      follow.textContent = "run finished";
    }
    var cancel = document.getElementById("cancel");
    if (cancel) {
      cancel.parentNode.removeChild(cancel);
    }
  });
  src.onerror = function () {
    if (follow) {
      follow.textContent = "connection lost, reconnecting…";
    }
  };
  src.onopen = function () {
    if (follow) {
      follow.textContent = "following live";
    }
  };
})();
