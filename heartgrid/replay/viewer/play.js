// Play mode (`heartgrid play`): the server owns the engine; this page sends the person's keys
// over a websocket and draws the step records the server sends back, with the replay viewer.
//
// Page -> server: {"type": "act", "action": NAME} (a flat action name such as "get_items_0", or
//   a direction "up" / "down" / "left" / "right" that the server turns into the recipe's moves),
//   {"type": "save"}, {"type": "reset"} (a new episode).
// Server -> page: {"type": "init", "document", "agent", "keys", "speed", "save"},
//   {"type": "step", "t", "record", "done"}, {"type": "saved", "path"}, {"type": "error", "message"}.
"use strict";

const PLAY_VIEWER_KEYS = [["Home End", "look at the first / last step"], ["[ ]", "slower / faster replay"],
  ["Esc", "clear the selection"], ["?", "this help"]];

function startPlay() {
  const url = new URL("ws", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(url.href);
  const state = { keys: new Map(), agent: 0, replay: null, viewer: null, done: false, sent: 0, steps: 0 };
  const send = (msg) => { if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg)); };
  const message = (text) => setText("play-message", text);

  window.heartgridPlay = {
    key(e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return false;
      const name = e.key.length === 1 ? e.key.toLowerCase() : e.key;
      const action = state.keys.get(name);
      if (action === undefined) return false;
      if (state.done) { message("The episode has ended: start a new one."); return true; }
      state.sent += 1;
      send({ type: "act", action });
      return true;
    },
    sent: () => state.sent, // act messages sent (for tests)
    steps: () => state.steps, // step records received
  };

  socket.onmessage = (event) => {
    let msg;
    try { msg = JSON.parse(event.data); } catch (e) { return; }
    if (msg.type === "init") {
      state.agent = msg.agent; state.done = false;
      state.replay = new Replay(msg.document, msg.name || "live game");
      state.steps = state.replay.length;
      const old = window.heartgrid.viewer;
      if (old) { old.frame = () => {}; old.playing = false; }
      state.viewer = startViewer([state.replay], { live: true });
      state.viewer.select(state.agent);
      state.viewer.setStep(state.replay.length);
      $("play-panel").hidden = false;
      setText("play-agent", `— you are agent ${msg.agent}`);
      setText("play-state", msg.speed > 0 ? `The game steps ${msg.speed} times a second; keys choose your next action.` : "The game steps on each key press.");
      const table = $("keymap");
      table.innerHTML = "";
      state.keys.clear();
      const rows = new Map(); // one row per thing done: its keys together
      const shown = { ArrowUp: "↑", ArrowDown: "↓", ArrowLeft: "←", ArrowRight: "→", " ": "space" };
      for (const [key, label, action] of msg.keys) {
        state.keys.set(key.length === 1 ? key.toLowerCase() : key, action);
        if (!rows.has(label)) rows.set(label, { keys: [], label });
        rows.get(label).keys.push(shown[key] || key);
      }
      for (const { keys, label } of rows.values()) {
        const tr = table.insertRow();
        const digits = keys.length > 2 && keys.every((k) => /^[0-9]$/.test(k));
        tr.insertCell().textContent = digits ? `${keys[0]}-${keys[keys.length - 1]}` : keys.join(" ");
        tr.insertCell().textContent = label;
      }
      setText("reset-button", "Restart");
      $("reset-button").title = "start over from the first episode";
      message(msg.save ? `Saves to ${msg.save}` : "");
    } else if (msg.type === "step") {
      const v = state.viewer;
      const following = v.t >= state.replay.length;
      state.replay.append(msg.record);
      state.steps = state.replay.length;
      if (following) v.setStep(state.replay.length); else v.update();
      if (msg.done) {
        state.done = true; state.replay.end = msg.end; state.viewer.layout();
        setText("reset-button", "Next episode");
        $("reset-button").title = "play the next episode";
        message(`The episode ended after ${state.replay.length} steps (${state.replay.end}). Save it, or play the next one.`);
      }
    } else if (msg.type === "saved") {
      message(`Saved ${msg.path}`);
    } else if (msg.type === "error") {
      message(`Server: ${msg.message}`);
    }
  };
  socket.onclose = () => { message("Disconnected from the game server (it stopped)."); };
  socket.onerror = () => { showStatus("Cannot reach the game server's websocket.", true); };
  $("save-button").onclick = () => send({ type: "save" });
  $("reset-button").onclick = () => send({ type: "reset" });
}
