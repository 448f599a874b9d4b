// main.js owns starting the console: the API key field, the notice line,
// and the views chosen by the URL's hash (#agents[/id], #chat?session=&agent=,
// #sessions). A reload while a run is followed opens that run's chat again.

import {token} from "./api.js";
import {initAgents, showAgents} from "./agents.js";
import {initChat, showChat} from "./chat.js";
import {byId} from "./dom.js";
import {initSessionPanel} from "./session-panel.js";
import {initSessions, showSessions} from "./sessions.js";
import * as store from "./store.js";

const VIEWS = ["agents", "chat", "sessions"];

function notify(text) {
  const notice = byId("notice");
  notice.textContent = text;
  notice.hidden = !text;
}

async function route() {
  notify("");
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const [view, ...rest] = path.split("/");
  const kept = store.activeRun();
  const name = VIEWS.includes(view) ? view : kept ? "chat" : "agents";
  for (const other of VIEWS) byId(`view-${other}`).hidden = other !== name;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === name);
  try {
    if (name === "agents") await showAgents(rest.length ? decodeURIComponent(rest.join("/")) : null);
    else if (name === "chat") await showChat(new URLSearchParams(query));
    else await showSessions();
  } catch (error) {
    notify(error.describe ? error.describe() : String(error));
  }
  document.body.dataset.view = name;
}

function start() {
  byId("token").value = token.get();
  byId("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    token.set(byId("token").value.trim());
    route();
  });
  initAgents();
  initChat(notify);
  initSessions(notify);
  initSessionPanel();
  window.addEventListener("hashchange", route);
  route();
}

start();
