// The video at an event: a player that starts 2 s before the event, stops (or loops) at
// its end and shows the event's span on its bar; a timeline of every event of the video.
// The batch page opens an event in a detail pane (click or Enter on a row); review mode
// has the player in its card. Keys: space play/pause, l loop, , . one frame, shift+←/→
// one second, [ ] previous/next event of this video, 0 back to the event's start.
// The media URL comes from /events/<id>/media (signed, expiring): when it dies while the
// page is open, a fresh one is asked for and playback resumes where it was.
(function () {
  "use strict";

  const PRE_ROLL = 2;
  const FRAME = 1 / 25; // the providers' clips are 25-30 fps; a step a reviewer can see
  const REFRESH_BEFORE_MS = 60 * 1000; // ask for a new URL this long before the old one expires
  let current = null; // the one live Player

  function number(value) {
    const parsed = parseFloat(value);
    return Number.isFinite(parsed) ? parsed : null;
  }

  function clock(seconds) {
    if (!Number.isFinite(seconds)) return "–:––";
    const whole = Math.max(0, Math.floor(seconds));
    const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  // --- Timeline: marks placed by time (CSP forbids inline styles: placed from here) ---

  function layoutTimeline(strip, duration) {
    const marks = Array.from(strip.querySelectorAll(".mark"));
    let total = duration || number(strip.dataset.duration);
    if (!total) total = Math.max(1, ...marks.map((m) => number(m.dataset.end) || number(m.dataset.start) || 0)) * 1.05;
    strip.dataset.duration = total;
    for (const mark of marks) {
      const start = number(mark.dataset.start);
      if (start === null) { mark.hidden = true; continue; }
      const end = Math.max(number(mark.dataset.end) ?? start, start);
      mark.style.left = (100 * start / total).toFixed(3) + "%";
      mark.style.width = Math.max(100 * (end - start) / total, 0.6).toFixed(3) + "%";
    }
    strip.classList.add("is-ready");
  }

  function layoutAll(root) {
    root.querySelectorAll("[data-timeline]").forEach((strip) => layoutTimeline(strip));
  }

  // --- The player ------------------------------------------------------------------

  class Player {
    constructor(root) {
      this.root = root;
      this.video = root.querySelector("video");
      this.bar = root.querySelector("[data-bar]");
      this.msg = root.querySelector("[data-msg]");
      this.scope = root.closest("[data-player-scope]") || root.parentElement;
      this.strip = this.scope.querySelector("[data-timeline]");
      this.loop = localStorage.getItem("reviewer.loop") === "1";
      this.hls = null;
      this.media = null;
      this.refreshTimer = null;
      this.select(root.dataset.event, number(root.dataset.start), number(root.dataset.end), root.dataset.media);
      this.video.muted = localStorage.getItem("reviewer.sound") !== "1";
      this.video.playbackRate = number(localStorage.getItem("reviewer.speed")) || 1;
      const speed = root.querySelector("[data-speed]");
      if (speed) speed.value = String(this.video.playbackRate);
      this.bind();
      this.render();
      this.load(false);
    }

    select(eventId, start, end, mediaUrl) {
      this.eventId = eventId;
      this.start = start ?? 0;
      this.end = end ?? this.start;
      this.mediaUrl = mediaUrl || this.mediaUrl;
      this.stopped = false;
      if (this.strip) {
        this.strip.querySelectorAll(".mark").forEach((m) => m.classList.toggle("is-current", m.dataset.event === String(eventId)));
      }
    }

    async fetchMedia(refresh) {
      const url = this.mediaUrl + (refresh ? "?refresh=1" : "");
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      const body = await response.json().catch(() => ({ error: "The server sent no answer it could read." }));
      if (!response.ok) throw new Error(body.error || "No video is available (HTTP " + response.status + ").");
      return body;
    }

    async load(refresh, resumeAt) {
      this.say("Loading the video…");
      let media;
      try {
        media = await this.fetchMedia(refresh);
      } catch (error) {
        this.root.classList.add("is-unavailable");
        this.say(error.message);
        return;
      }
      if (this.root !== current?.root) return; // replaced meanwhile
      this.media = media;
      this.root.classList.remove("is-unavailable");
      this.attach(media, resumeAt);
      this.scheduleRefresh(media);
    }

    attach(media, resumeAt) {
      const video = this.video;
      const startAt = resumeAt ?? Math.max(0, this.start - PRE_ROLL);
      const wasPlaying = resumeAt !== undefined ? !video.paused : true;
      if (this.hls) { this.hls.destroy(); this.hls = null; }
      const seekAndPlay = () => {
        video.currentTime = startAt;
        video.addEventListener("seeked", () => {
          // When the first frame at the starting point showed (measured by the browser tests).
          this.firstFrame = this.firstFrame || { at: performance.now(), position: video.currentTime };
        }, { once: true });
        if (media.duration && this.strip) layoutTimeline(this.strip, media.duration);
        else if (video.duration && this.strip) layoutTimeline(this.strip, video.duration);
        this.say("");
        if (wasPlaying) video.play().catch(() => this.say("Press space (or Play) to start."));
        this.render();
      };
      video.addEventListener("loadedmetadata", seekAndPlay, { once: true });
      // hls.js wherever Media Source Extensions exist (as its docs advise), native HLS (Safari) otherwise.
      if (media.kind === "hls" && window.Hls && window.Hls.isSupported()) {
        // enableWorker off: the CSP allows no blob: workers.
        this.hls = new window.Hls({ enableWorker: false, startPosition: startAt });
        this.hls.on(window.Hls.Events.ERROR, (_, data) => { if (data.fatal) this.recover(); });
        this.hls.loadSource(media.url);
        this.hls.attachMedia(video);
      } else {
        video.src = media.url;
      }
    }

    // The URL died (expired early, a network error): ask for a fresh one, keep the position.
    recover() {
      if (this.recovering) return;
      this.recovering = true;
      // The element may have lost its position with its source: the last one seen playing counts.
      const position = this.position ?? Math.max(0, this.start - PRE_ROLL);
      this.say("The video link expired: getting a fresh one…");
      this.load(true, position).finally(() => { this.recovering = false; });
    }

    scheduleRefresh(media) {
      clearTimeout(this.refreshTimer);
      if (!media.expires_at) return;
      const wait = new Date(media.expires_at).getTime() - Date.now() - REFRESH_BEFORE_MS;
      this.refreshTimer = setTimeout(() => this.recover(), Math.max(wait, 5000));
    }

    bind() {
      const video = this.video;
      video.addEventListener("timeupdate", () => this.onTime());
      video.addEventListener("seeked", () => { if (!this.recovering) this.position = video.currentTime; });
      video.addEventListener("play", () => this.render());
      video.addEventListener("pause", () => this.render());
      video.addEventListener("error", () => { if (this.media) this.recover(); });
      this.root.addEventListener("click", (event) => {
        const button = event.target.closest("[data-act]");
        if (button) this.act(button.dataset.act);
      });
      this.root.querySelector("[data-speed]")?.addEventListener("change", (event) => this.speed(number(event.target.value)));
      this.bar?.addEventListener("click", (event) => {
        const box = this.bar.getBoundingClientRect();
        if (video.duration) this.seek(video.duration * (event.clientX - box.left) / box.width);
      });
      this.strip?.addEventListener("click", (event) => {
        const mark = event.target.closest(".mark");
        if (mark) this.goTo(mark);
      });
    }

    onTime() {
      const video = this.video;
      if (!this.recovering && video.readyState >= 2) this.position = video.currentTime;
      if (!this.stopped && this.end > this.start && video.currentTime >= this.end) {
        if (this.loop) video.currentTime = this.start;
        else { video.pause(); this.stopped = true; }
      }
      this.render();
    }

    render() {
      const video = this.video, duration = video.duration;
      const span = this.root.querySelector("[data-span]"), head = this.root.querySelector("[data-head]");
      if (duration && span && head) {
        span.style.left = (100 * this.start / duration) + "%";
        span.style.width = Math.max(100 * (this.end - this.start) / duration, 0.5) + "%";
        head.style.left = (100 * video.currentTime / duration) + "%";
      }
      const time = this.root.querySelector("[data-clock]");
      if (time) time.textContent = clock(video.currentTime) + " / " + clock(duration);
      const play = this.root.querySelector("[data-act=play]");
      if (play) play.textContent = video.paused ? "Play" : "Pause";
      const loop = this.root.querySelector("[data-act=loop]");
      if (loop) loop.setAttribute("aria-pressed", String(this.loop));
      const sound = this.root.querySelector("[data-act=sound]");
      if (sound) sound.textContent = video.muted ? "Sound off" : "Sound on";
    }

    say(text) {
      if (this.msg) this.msg.textContent = text;
    }

    seek(seconds) {
      const video = this.video;
      video.currentTime = Math.min(Math.max(0, seconds), video.duration || seconds);
      this.stopped = video.currentTime >= this.end; // playing on past the end is the reviewer's choice
    }

    speed(rate) {
      if (!rate) return;
      this.video.playbackRate = rate;
      localStorage.setItem("reviewer.speed", String(rate));
    }

    goTo(mark) {
      this.select(mark.dataset.event, number(mark.dataset.start), number(mark.dataset.end), mark.dataset.media);
      this.seek(Math.max(0, this.start - PRE_ROLL));
      this.video.play().catch(() => {});
      this.root.dispatchEvent(new CustomEvent("player:event", { bubbles: true, detail: { event: mark.dataset.event } }));
    }

    step(direction) {
      if (!this.strip) return;
      const marks = Array.from(this.strip.querySelectorAll(".mark:not([hidden])"));
      const index = marks.findIndex((m) => m.dataset.event === String(this.eventId));
      const next = marks[index + direction];
      if (next) this.goTo(next);
    }

    act(action) {
      const video = this.video;
      if (action === "play") this.togglePlay();
      else if (action === "loop") { this.loop = !this.loop; localStorage.setItem("reviewer.loop", this.loop ? "1" : "0"); }
      else if (action === "sound") { video.muted = !video.muted; localStorage.setItem("reviewer.sound", video.muted ? "0" : "1"); }
      else if (action === "frame-back") { video.pause(); this.seek(video.currentTime - FRAME); }
      else if (action === "frame-forward") { video.pause(); this.seek(video.currentTime + FRAME); }
      else if (action === "back-second") this.seek(video.currentTime - 1);
      else if (action === "forward-second") this.seek(video.currentTime + 1);
      else if (action === "prev-event") this.step(-1);
      else if (action === "next-event") this.step(1);
      else if (action === "restart") { this.seek(this.start); video.play().catch(() => {}); }
      this.render();
    }

    togglePlay() {
      const video = this.video;
      if (!video.paused) { video.pause(); return; }
      if (this.stopped) this.seek(this.start); // stopped at the event's end: play it again
      video.play().catch(() => this.say("The browser refused to play: press Play."));
    }

    destroy() {
      clearTimeout(this.refreshTimer);
      if (this.hls) this.hls.destroy();
      this.video.removeAttribute("src");
      this.video.load();
    }
  }

  function mount(root) {
    const element = root.querySelector ? root.querySelector("[data-player]") : null;
    layoutAll(root);
    if (!element || element === current?.root) return;
    if (current) current.destroy();
    current = new Player(element);
    window.reviewerPlayer = current; // for the browser tests and the console
  }

  // Keys, before review.js sees them (capture), only while a player is on the page.
  const KEYS = {
    " ": "play", l: "loop", ",": "frame-back", ".": "frame-forward", "[": "prev-event", "]": "next-event", 0: "restart",
  };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest && event.target.closest("input, textarea, select, button, [contenteditable]") && event.key === " ") return;
    if (event.target.closest && event.target.closest("input, textarea, select, [contenteditable]")) return;
    if (document.querySelector("dialog[open]")) return;
    // Enter on a focused event row opens it in the pane.
    if (event.key === "Enter" && event.target.matches && event.target.matches("tr.event")) {
      event.preventDefault();
      openPane(event.target.dataset.event);
      return;
    }
    if (event.key === "Escape" && document.querySelector("#event-pane:not([hidden])")) { closePane(); return; }
    if (!current || !document.body.contains(current.root)) return;
    let action = KEYS[event.key];
    if (event.shiftKey && event.key === "ArrowLeft") action = "back-second";
    if (event.shiftKey && event.key === "ArrowRight") action = "forward-second";
    if (!action) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    current.act(action);
  }, true);

  // --- The detail pane of the batch page -------------------------------------------

  async function openPane(eventId, event) {
    const pane = document.getElementById("event-pane");
    if (!pane || !eventId) return;
    const body = pane.querySelector("[data-pane-body]");
    pane.hidden = false;
    document.body.classList.add("has-pane");
    const response = await fetch("/events/" + eventId + "/pane", { credentials: "same-origin", headers: { "HX-Request": "true" } });
    body.innerHTML = response.ok ? await response.text() : "<p class=\"alert alert-bad\">This event could not be opened (HTTP " + response.status + ").</p>";
    if (window.htmx) window.htmx.process(body); // its history loads on demand
    mount(body);
    // The player takes the keyboard (space would press the button that opened the pane again).
    if (event.target?.closest?.("button")) current?.root.focus({ preventScroll: true });
    document.querySelectorAll("tr.event.is-open").forEach((row) => row.classList.remove("is-open"));
    document.getElementById("event-" + eventId)?.classList.add("is-open");
  }

  function closePane() {
    const pane = document.getElementById("event-pane");
    if (!pane) return;
    pane.hidden = true;
    document.body.classList.remove("has-pane");
    if (current && pane.contains(current.root)) { current.destroy(); current = null; }
    pane.querySelector("[data-pane-body]").textContent = "";
    document.querySelectorAll("tr.event.is-open").forEach((row) => row.classList.remove("is-open"));
  }

  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-close-pane]")) { closePane(); return; }
    const opener = event.target.closest("[data-open-event]");
    if (opener) { event.preventDefault(); openPane(opener.dataset.openEvent, event); return; }
    const row = event.target.closest("#results tr.event");
    if (row && !event.target.closest("a, button, input, summary, details")) openPane(row.dataset.event);
    const mark = event.target.closest("#results [data-timeline] .mark");
    if (mark) openPane(mark.dataset.event);
  });

  // The pane follows j/k: the focused row's event plays (decisions move the focus on).
  document.addEventListener("focusin", (event) => {
    const row = event.target.closest && event.target.closest("#results tr.event");
    const pane = document.getElementById("event-pane");
    if (row && pane && !pane.hidden && row.dataset.event !== String(current?.eventId)) openPane(row.dataset.event);
  });

  document.addEventListener("htmx:load", (event) => mount(event.detail.elt));
  document.addEventListener("DOMContentLoaded", () => mount(document));
})();
