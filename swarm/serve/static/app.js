// swarm's page: watch tasks as they run, answer approvals, teach and switch the router.
// Plain DOM: every text from the server goes in through textContent or attributes, never as HTML.

const TOKEN_KEY = "swarm.token";
const LIST_LIMIT = 50;
const OUT_OF_SCOPE = "oos";

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  agents: [],
  tasks: new Map(),      // id -> task row (roots only), for the list
  runFilter: "",
  open: null,            // {id, tree: Set of ids whose events belong to it, log: element}
  refreshTimer: null,
  waiting: [],           // approvals waiting
  runs: new Set(),       // ids of the runs in the run picker
  recent: [],            // the last RECENT_EVENTS events, replayed into a task opened late
};
const RECENT_EVENTS = 2000;
const MAX_LOG = 1000;  // events shown for one task: the newest

const $ = (id) => document.getElementById(id);

// ---- small DOM helpers ----------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const shortId = (id) => (id ? String(id).slice(-8) : "");
const taskHref = (id) => `#/tasks/${encodeURIComponent(id)}`;

function clock(seconds) {
  if (seconds === null || seconds === undefined) return "";
  return new Date(seconds * 1000).toLocaleTimeString([], { hour12: false });
}

function when(value) {
  if (value === null || value === undefined || value === "") return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString([], { hour12: false });
}

function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

const percent = (p) => `${(100 * (Number(p) || 0)).toFixed(1)}%`;

function statusChip(status) {
  return el("span", { class: `chip status-${status || "unknown"}` }, status || "unknown");
}

function json(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

let noticeTimer = null;

function say(message, kind = "error") {
  const notice = $("notice");
  notice.textContent = message;
  notice.className = `notice notice-${kind}`;
  notice.hidden = !message;
  clearTimeout(noticeTimer);
  if (message && kind === "ok") noticeTimer = setTimeout(() => say(""), 6000);  // errors stay
}

// ---- the API ---------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  if (state.token) h.Authorization = `Bearer ${state.token}`;
  return h;
}

async function api(path, { method = "GET", body } = {}) {
  for (let attempt = 0; ; attempt++) {
    const sent = state.token;
    const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(path, init);
    if (response.status === 401 && attempt < 3) {
      // Refused with a token given up since: try the new one before asking again.
      if (state.token === sent) await askToken(sent ? "That token was refused; try again." : "");
      continue;
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    if (!response.ok) throw new ApiError(response.status, errorText(response, data));
    return data;
  }
}

// The API answers errors as {"detail": "what was wrong, in words", "errors": [...]}.
function errorText(response, data) {
  const detail = data && typeof data === "object" ? data.detail : data;
  return `${response.status} ${response.statusText}${detail ? `: ${json(detail)}` : ""}`;
}

let tokenPrompt = null;

function askToken(problem = "") {
  // One prompt at a time: requests refused meanwhile wait for the same answer.
  if (tokenPrompt) return tokenPrompt;
  tokenPrompt = new Promise((resolve) => {
    const dialog = $("token-dialog");
    const error = $("token-error");
    error.textContent = problem;
    error.hidden = !problem;
    $("token-input").value = "";
    $("token-form").onsubmit = (event) => {
      event.preventDefault();
      const token = $("token-input").value.trim();
      if (!token) return;
      state.token = token;
      sessionStorage.setItem(TOKEN_KEY, token);
      dialog.close();
      tokenPrompt = null;
      resolve(token);
    };
    dialog.showModal();
    $("token-input").focus();
  });
  return tokenPrompt;
}

async function checkAuth() {
  let auth = null;
  try {
    auth = await api("/v1/auth");
  } catch {
    return;  // not answered: a 401 later still asks for the token
  }
  if (auth && auth.required && !state.token) await askToken();
}

// ---- the event stream ------------------------------------------------------------------------

// fetch, not EventSource: EventSource cannot send the Authorization header.
async function followEvents() {
  let lastId = null;
  let dropped = false;  // since the last connection: events may have been missed
  let wait = 500;
  for (;;) {
    try {
      const h = headers({ Accept: "text/event-stream" });
      if (lastId !== null) h["Last-Event-ID"] = lastId;
      const sent = state.token;
      const response = await fetch("/v1/events", { headers: h });
      if (response.status === 401) {
        if (state.token === sent) await askToken(sent ? "That token was refused; try again." : "");
        continue;
      }
      if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
      setStreamState("live", "live");
      if (dropped) resync();
      dropped = false;
      wait = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        // Lines may end in \r\n (sse-starlette's default): a \r at the end of a chunk waits for
        // the next one, so a \r\n split between two chunks is not read as an empty line.
        buffer = (buffer + value).replace(/\r\n|\r(?=.)/gs, "\n");
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const message = parseEventBlock(block);
          if (message.id !== null) lastId = message.id;
          if (message.data) handleMessage(message);
        }
      }
    } catch {
      // the server went away or the network dropped: try again below
    }
    dropped = true;
    setStreamState("reconnecting…", "down");
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 10000);
  }
}

function resync() {
  loadTasks();
  loadRuns();
  loadApprovals();
  if (state.open) scheduleRefresh();
}

function parseEventBlock(block) {
  const message = { event: "message", data: "", id: null };
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") message.event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") message.id = value;
  }
  message.data = data.join("\n");
  return message;
}

function setStreamState(text, kind) {
  const node = $("stream-state");
  node.textContent = `events: ${text}`;
  node.dataset.state = kind;
}

function handleMessage(message) {
  let event;
  try {
    event = JSON.parse(message.data);
  } catch {
    return;
  }
  if (!event || typeof event !== "object" || !event.task_id) return;
  state.recent.push(event);
  if (state.recent.length > RECENT_EVENTS) state.recent.splice(0, state.recent.length - RECENT_EVENTS);
  updateListFromEvent(event);
  if (["waiting", "approved", "denied"].includes(event.kind)) loadApprovals();
  if (state.open && showEvent(state.open, event) && event.kind !== "token") scheduleRefresh();
}

// Whether `event` belongs to the open task's tree (then it goes in its log).
function showEvent(open, event) {
  if (!open.tree.has(event.task_id) && !open.tree.has(event.parent_id)) return false;
  open.tree.add(event.task_id);
  if (event.kind === "delegated" && event.data && event.data.child_id) open.tree.add(event.data.child_id);
  appendEvent(open.log, event);
  return true;
}

function updateListFromEvent(event) {
  if (event.run_id && !state.runs.has(event.run_id)) {
    state.runs.add(event.run_id);
    loadRuns();
  }
  if (event.parent_id) return;  // the list shows root tasks
  if (state.runFilter && event.run_id && event.run_id !== state.runFilter) return;
  const data = event.data || {};
  let row = state.tasks.get(event.task_id);
  if (!row) {
    if (event.kind !== "queued") return;
    row = { id: event.task_id, text: data.text || "", status: "queued", agent: data.agent || null,
            run_id: event.run_id, created_at: event.at };
  }
  row = { ...row };
  if (event.kind === "routed") row.agent = data.agent ?? row.agent;
  if (event.kind === "started") { row.status = "running"; row.agent = data.agent ?? row.agent; }
  if (event.kind === "waiting") row.status = "waiting";
  if (event.kind === "approved" || event.kind === "denied") row.status = "running";
  if (event.kind === "handoff") row.agent = data.to ?? row.agent;
  if (event.kind === "done") { row.status = data.status || "done"; row.agent = data.agent ?? row.agent; }
  state.tasks.set(row.id, row);
  if (state.tasks.size > LIST_LIMIT * 4) {  // a page left open for days keeps a bounded list
    const oldest = [...state.tasks.values()].sort((a, b) => (a.created_at || 0) - (b.created_at || 0));
    for (const old of oldest.slice(0, state.tasks.size - LIST_LIMIT)) state.tasks.delete(old.id);
  }
  renderTaskList();
}

// ---- tasks: the list -------------------------------------------------------------------------

async function loadRuns() {
  try {
    const { runs } = await api("/v1/runs");
    const select = $("run-filter");
    const keep = select.value;
    select.replaceChildren(el("option", { value: "" }, "all runs"));
    for (const run of runs || []) {
      state.runs.add(run.id);
      const label = `${shortId(run.id)} · ${run.kind || "run"} · ${when(run.started_at)}` +
        (run.tasks !== undefined ? ` · ${run.tasks} task${run.tasks === 1 ? "" : "s"}` : "");
      select.append(el("option", { value: run.id }, label));
    }
    select.value = keep;
  } catch (error) {
    say(`Could not load runs: ${error.message}`);
  }
}

async function loadTasks() {
  const query = new URLSearchParams({ limit: String(LIST_LIMIT), roots: "true" });
  if (state.runFilter) query.set("run_id", state.runFilter);
  try {
    const { tasks } = await api(`/v1/tasks?${query}`);
    state.tasks = new Map((tasks || []).filter((t) => !t.parent_id).map((t) => [t.id, t]));
    renderTaskList();
  } catch (error) {
    say(`Could not load tasks: ${error.message}`);
  }
}

function renderTaskList() {
  const rows = [...state.tasks.values()].sort((a, b) => (b.created_at || 0) - (a.created_at || 0)
    || String(b.id).localeCompare(String(a.id)));
  const list = $("task-list");
  const openId = state.open && state.open.id;
  list.replaceChildren(...rows.slice(0, LIST_LIMIT).map((task) => el("li", { "data-task-id": task.id },
    el("a", { href: taskHref(task.id), "aria-current": task.id === openId ? "page" : null },
      statusChip(task.status),
      el("span", { class: "task-agent" }, task.agent || "—"),
      el("span", { class: "task-text" }, task.text || ""),
      el("span", { class: "task-id mono" }, shortId(task.id))))));
  $("task-list-empty").hidden = rows.length > 0;
}

async function loadAgents() {
  try {
    const { agents } = await api("/v1/agents");
    state.agents = agents || [];
  } catch (error) {
    say(`Could not load agents: ${error.message}`);
  }
  const select = $("submit-agent");
  select.replaceChildren(el("option", { value: "" }, "let the router choose"),
    ...state.agents.map((a) => el("option", { value: a.name }, a.name)));
}

async function submitTask(event) {
  event.preventDefault();
  const text = $("submit-text").value.trim();
  if (!text) return;
  const body = { text };
  const agent = $("submit-agent").value;
  if (agent) body.agent = agent;
  const button = event.submitter || $("submit-form").querySelector("button");
  button.disabled = true;
  try {
    const created = await api("/v1/tasks", { method: "POST", body });
    $("submit-text").value = "";
    say("");
    if (!state.tasks.has(created.id)) {
      state.tasks.set(created.id, { id: created.id, text, status: created.status || "queued",
        agent: agent || null, created_at: Date.now() / 1000 });
      renderTaskList();
    }
    location.hash = taskHref(created.id);
  } catch (error) {
    say(`Could not submit: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

// ---- tasks: one task -------------------------------------------------------------------------

function openTask(id) {
  if (state.open && state.open.id === id) return refreshTask();
  const log = el("ol", { class: "event-log", id: "event-log", role: "log", "aria-label": "Events of this task" });
  state.open = { id, tree: new Set([id]), log, tries: 0, fresh: true };
  for (const event of state.recent) showEvent(state.open, event);  // what came before it opened
  renderTaskList();
  $("task-detail").replaceChildren(el("p", { class: "muted" }, "Loading task…"));
  return refreshTask();
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refreshTask, 250);
}

async function refreshTask() {
  const open = state.open;
  if (!open) return;
  const asked = (open.asked = (open.asked || 0) + 1);
  const stale = () => state.open !== open || open.asked !== asked;  // a newer refresh is on its way
  let task;
  let tree = null;
  try {
    task = await api(`/v1/tasks/${encodeURIComponent(open.id)}`);
  } catch (error) {
    if (stale()) return;
    if (error.status === 404 && open.tries++ < 20) {  // submitted, not stored yet
      state.refreshTimer = setTimeout(refreshTask, 300);
      return;
    }
    $("task-detail").replaceChildren(el("p", { class: "error", role: "alert" },
      `Could not load task ${open.id}: ${error.message}`), eventsSection(open.log));
    return;
  }
  try {
    tree = await api(`/v1/traces/${encodeURIComponent(task.id)}`);
  } catch (error) {
    tree = { error: error.message };
  }
  if (stale()) return;
  if (task.id !== open.id) {  // a short id resolved: follow the full one from now on
    open.tree.add(task.id);
    open.id = task.id;
    collectTree(tree, open.tree);
    open.log.replaceChildren();
    for (const event of state.recent) showEvent(open, event);
  }
  collectTree(tree, open.tree);
  const waiting = state.waiting.filter((a) => open.tree.has(a.task_id));
  const seen = JSON.stringify([task, tree, waiting, state.agents.length]);
  if (seen === open.shown && !open.fresh) return;  // nothing new: leave the view (and focus) be
  open.shown = seen;
  const focusId = document.activeElement && document.activeElement.id;
  $("task-detail").replaceChildren(renderTask(task, tree, waiting, open.log));
  if (open.fresh) {  // a task just opened: take the reader (and a phone's screen) to it
    open.fresh = false;
    if (!document.activeElement || document.activeElement === document.body || document.activeElement.closest(".task-list")) {
      $("task-heading").focus({ preventScroll: true });
    }
    const top = $("task-detail").getBoundingClientRect().top;
    if (top < 0 || top > window.innerHeight * 0.6) $("task-detail").scrollIntoView({ block: "start" });
  } else if (focusId && $(focusId)) {
    $(focusId).focus();
  }
  renderTaskList();
}

function collectTree(node, ids) {
  if (!node || !node.id) return;
  ids.add(node.id);
  for (const child of node.children || []) collectTree(child, ids);
}

function renderTask(task, tree, waiting, log) {
  const started = task.started_at ?? task.created_at;
  const took = task.finished_at && started ? (task.finished_at - started) * 1000 : null;
  const facts = [
    ["Id", el("span", { class: "mono" }, task.id)],
    ["Agent", task.agent || "—"],
    task.forced_agent ? ["Asked for", task.forced_agent] : null,
    ["Run", el("span", { class: "mono" }, task.run_id || "—")],
    task.parent_id ? ["Parent", el("a", { href: taskHref(task.parent_id), class: "mono" }, shortId(task.parent_id))] : null,
    task.session_id ? ["Session", el("span", { class: "mono" }, task.session_id)] : null,
    task.payload && Object.keys(task.payload).length ? ["Payload", el("pre", { class: "output" }, json(task.payload))] : null,
    ["Created", when(task.created_at)],
    took !== null ? ["Took", duration(took)] : null,
    task.attempts ? ["Attempts", String(task.attempts)] : null,
    task.hops && task.hops.length ? ["Hops", task.hops.map((h) => (typeof h === "string" ? h : json(h))).join(" → ")] : null,
  ].filter(Boolean);
  return el("article", { class: "task", "aria-labelledby": "task-heading", "data-task-id": task.id, "data-status": task.status },
    el("header", { class: "task-head" },
      el("h2", { id: "task-heading", tabindex: "-1" }, `Task ${shortId(task.id)} `, statusChip(task.status)),
      el("blockquote", { class: "task-request" }, task.text || ""),
      el("dl", { class: "facts" }, facts.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]))),
    waiting.length ? el("section", { class: "card", "aria-labelledby": "task-approvals-heading" },
      el("h3", { id: "task-approvals-heading" }, "Waiting for a person"),
      el("ul", { class: "approval-list" }, waiting.map((a) => approvalItem(a, "task")))) : null,
    resultSection(task),
    el("div", { class: "pair" }, decisionSection(task), feedbackSection(task)),
    treeSection(tree),
    timelineSection(tree),
    eventsSection(log));
}

function resultSection(task) {
  const finished = !["queued", "running", "waiting"].includes(task.status);
  return el("section", { class: "card", "aria-labelledby": "result-heading" },
    el("h3", { id: "result-heading" }, "Result"),
    !finished ? el("p", { class: "muted" }, `Not finished: ${task.status}.`) : null,
    task.error ? el("pre", { class: "error output" }, task.error) : null,
    finished && task.output !== null && task.output !== undefined
      ? el("pre", { class: "output", "aria-label": "Output" }, json(task.output)) : null);
}

function decisionSection(task) {
  const d = task.decision;
  const section = el("section", { class: "card decision", "aria-labelledby": "decision-heading" },
    el("h3", { id: "decision-heading" }, "Routing decision"));
  if (!d) {
    section.append(el("p", { class: "muted" }, task.forced_agent
      ? `Sent to ${task.forced_agent} directly: the router was not asked.`
      : "No routing decision stored (yet)."));
    return section;
  }
  const rows = [
    ["Agent", d.agent || "none (out of scope)"],
    ["Status", d.status || ""],
    ["Confidence", percent(d.confidence)],
    d.rule ? ["Rule", d.rule] : null,
    ["Router", d.router_version || "—"],
  ].filter(Boolean);
  section.append(el("dl", { class: "facts" }, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])));
  const candidates = d.candidates || [];  // [[agent, probability], ...]
  if (candidates.length) {
    section.append(el("h4", { id: "candidates-heading" }, "Candidates"),
      el("ul", { class: "bars", "aria-labelledby": "candidates-heading" }, candidates.map(([agent, p]) => {
        const fill = el("span", { class: "bar-fill" });
        fill.style.width = percent(Math.max(0, Math.min(1, Number(p) || 0)));
        return el("li", { class: agent === d.agent ? "bar-row chosen" : "bar-row" },
          el("span", { class: "bar-label" }, agent),
          el("span", { class: "bar", role: "meter", "aria-valuemin": "0", "aria-valuemax": "1",
            "aria-valuenow": String(Number(p) || 0), "aria-label": `${agent}: ${percent(p)}` }, fill),
          el("span", { class: "bar-value" }, percent(p)));
      })));
  }
  const neighbours = d.neighbours || [];
  section.append(el("h4", { id: "neighbours-heading" }, "Nearest examples"));
  if (neighbours.length) {
    section.append(el("ol", { class: "neighbours", "aria-labelledby": "neighbours-heading" }, neighbours.map((n) =>
      el("li", {},
        el("span", { class: "neighbour-text" }, `“${n.text}”`),
        el("span", { class: "chip" }, n.agent || OUT_OF_SCOPE),
        el("span", { class: "bar-value" }, n.similarity === undefined ? "" : Number(n.similarity).toFixed(2))))));
  } else {
    section.append(el("p", { class: "muted" }, "This router keeps no examples to show."));
  }
  return section;
}

// What the feedback box says and which agent it picked live in `state.open`, not in the DOM: the
// task's view is rebuilt when its events arrive, and must not lose them.
function feedbackSection(task) {
  const open = state.open;
  const said = open.feedback || { text: "", kind: "" };
  const status = el("p", { id: "feedback-status", class: `feedback-status ${said.kind}`, role: "status" }, said.text);
  const tell = (text, kind) => {
    open.feedback = { text, kind };
    const shown = $("feedback-status");  // the box now on the page (it may have been rebuilt)
    if (shown) {
      shown.textContent = text;
      shown.className = `feedback-status ${kind}`;
    }
  };
  const send = async (body, button) => {
    button.disabled = true;
    try {
      const stored = await api(`/v1/tasks/${encodeURIComponent(task.id)}/feedback`, { method: "POST", body });
      const kind = stored.kind;  // good, bad or correction: what the store made of it
      const agent = stored.agent;
      tell(`Stored: ${kind}${agent ? ` → ${agent}` : ""}. Thank you.`, "ok");
    } catch (error) {
      tell(`Not stored: ${error.message}`, "error");
    } finally {
      button.disabled = false;
    }
  };
  const choices = [...state.agents.filter((a) => a.name !== task.agent).map((a) => a.name), OUT_OF_SCOPE];
  // No agent chosen until the person chooses one: a stray click must not record a correction.
  if (!choices.includes(open.feedbackAgent)) open.feedbackAgent = "";
  const picker = el("select", { id: "feedback-agent", onchange: (e) => {
    open.feedbackAgent = e.target.value;
    $("feedback-correct").disabled = !open.feedbackAgent;
  } },
    el("option", { value: "", selected: !open.feedbackAgent }, "choose an agent…"),
    choices.map((name) => el("option", { value: name, selected: name === open.feedbackAgent },
      name === OUT_OF_SCOPE ? "nobody (out of scope)" : name)));
  const right = el("button", { type: "button", class: "good", id: "feedback-good", onclick: (e) => send({ verdict: "good" }, e.currentTarget) }, "Right");
  const wrong = el("button", { type: "button", class: "bad", id: "feedback-bad", onclick: (e) => send({ verdict: "bad" }, e.currentTarget) }, "Wrong");
  const belongs = el("button", { type: "button", id: "feedback-correct", disabled: !open.feedbackAgent,
    onclick: (e) => {
      const agent = $("feedback-agent").value;
      if (agent) send({ verdict: "bad", agent }, e.currentTarget);
    } }, "Correct the routing");
  return el("section", { class: "card feedback", "aria-labelledby": "feedback-heading" },
    el("h3", { id: "feedback-heading" }, "Was it routed well?"),
    el("div", { class: "buttons", role: "group", "aria-label": "Verdict" }, right, wrong),
    el("div", { class: "belongs" },
      el("label", { for: "feedback-agent" }, "It belongs to"), picker, belongs),
    status);
}

function treeSection(tree) {
  const section = el("section", { class: "card", "aria-labelledby": "tree-heading" },
    el("h3", { id: "tree-heading" }, "Task tree"));
  if (!tree || tree.error) {
    section.append(el("p", { class: "muted" }, `No trace: ${tree ? tree.error : "not stored yet"}`));
    return section;
  }
  const node = (t) => el("li", { "data-task-id": t.id },
    el("div", { class: "tree-node" },
      el("a", { href: taskHref(t.id), class: "mono" }, shortId(t.id)),
      statusChip(t.status),
      el("span", { class: "task-agent" }, t.agent || "—"),
      el("span", { class: "task-text" }, t.text || ""),
      el("span", { class: "muted" }, `${(t.spans || []).length} span${(t.spans || []).length === 1 ? "" : "s"}`)),
    (t.children || []).length ? el("ul", {}, t.children.map(node)) : null);
  section.append(el("ul", { class: "tree", "aria-label": "Task and the tasks it delegated" }, node(tree)));
  return section;
}

function timelineRows(tree) {
  const rows = [];
  const now = Date.now() / 1000;
  const walk = (t, depth) => {
    const start = t.started_at ?? t.created_at;
    if (start) {
      rows.push({ depth, kind: "task", label: `${t.agent || "task"} · ${shortId(t.id)}`, status: t.status,
        start, end: t.finished_at ?? now, open: !t.finished_at });
    }
    for (const s of t.spans || []) {
      if (!s.started_at) continue;
      rows.push({ depth: depth + 1, kind: s.kind || "span", label: `${s.kind}: ${s.name}`, status: s.status,
        start: s.started_at, end: s.ended_at ?? now, open: !s.ended_at, error: s.error });
    }
    for (const c of t.children || []) walk(c, depth + 1);
  };
  walk(tree, 0);
  return rows;
}

function timelineSection(tree) {
  const section = el("section", { class: "card", "aria-labelledby": "timeline-heading" },
    el("h3", { id: "timeline-heading" }, "Timeline"));
  const rows = tree && !tree.error ? timelineRows(tree) : [];
  if (!rows.length) {
    section.append(el("p", { class: "muted" }, "Nothing has run yet."));
    return section;
  }
  const t0 = Math.min(...rows.map((r) => r.start));
  const t1 = Math.max(...rows.map((r) => r.end));
  const span = Math.max(t1 - t0, 1e-6);
  const axis = el("div", { class: "tl-axis", "aria-hidden": "true" },
    [0, 0.25, 0.5, 0.75, 1].map((f) => {
      const tick = el("span", { class: "tl-tick" }, f ? duration(f * span * 1000) : "0");
      tick.style.left = `${f * 100}%`;
      return tick;
    }));
  const list = el("ol", { class: "timeline", "aria-label": `Spans over ${duration(span * 1000)}` },
    rows.map((r) => {
      const bar = el("span", { class: `tl-bar kind-${r.kind} status-${r.status || "ok"}${r.open ? " open" : ""}`,
        title: `${r.label}: ${duration((r.end - r.start) * 1000)}${r.error ? ` (${r.error})` : ""}` });
      bar.style.left = `${((r.start - t0) / span) * 100}%`;
      bar.style.width = `max(2px, ${((r.end - r.start) / span) * 100}%)`;
      const label = el("span", { class: "tl-label" }, r.label);
      label.style.paddingLeft = `${r.depth * 0.9}em`;
      return el("li", { class: "tl-row" }, label,
        el("span", { class: "tl-track" }, bar),
        el("span", { class: "tl-dur" }, `${duration((r.end - r.start) * 1000)}${r.open ? "…" : ""}`));
    }));
  section.append(el("div", { class: "tl-head" }, el("span", {}), axis, el("span", {})), list);
  return section;
}

function eventsSection(log) {
  return el("section", { class: "card", "aria-labelledby": "events-heading" },
    el("h3", { id: "events-heading" }, "Events as they arrive"),
    log.childElementCount ? null : el("p", { class: "muted events-hint" }, "Events of this task appear here while it runs."),
    log);
}

function eventSummary(event) {
  const d = event.data || {};
  switch (event.kind) {
    case "queued": return d.text ? `“${d.text}”` : "";
    case "routed": return `${d.agent || "none"} (${d.status || ""}, ${percent(d.confidence)})`;
    case "started": return `${d.agent} attempt ${d.attempt}`;
    case "span": return `${d.kind}: ${d.name} ${d.status || ""} ${duration(d.duration_ms)}${d.error ? ` ${d.error}` : ""}`;
    case "delegated": return `${shortId(d.child_id)} → ${d.agent || "router"}: “${d.text}”`;
    case "handoff": return `${d.from} → ${d.to}${d.reason ? `: ${d.reason}` : ""}`;
    case "waiting": return `“${d.question}”`;
    case "approved": case "denied": return `${d.by || "someone"}${d.note ? `: ${d.note}` : ""}`;
    case "token": return d.text || "";
    case "done": return `${d.status}${d.agent ? ` by ${d.agent}` : ""}${d.error ? `: ${d.error}` : ""}`;
    default: return json(d);
  }
}

function appendEvent(log, event) {
  if (event.kind === "token") {  // stream tokens into one growing line
    const last = log.lastElementChild;
    if (last && last.dataset.kind === "token" && last.dataset.taskId === event.task_id) {
      last.querySelector(".event-text").append(document.createTextNode((event.data || {}).text || ""));
      return;
    }
  }
  const item = el("li", { class: `event event-${event.kind}`, "data-kind": event.kind, "data-task-id": event.task_id },
    el("time", { class: "mono" }, clock(event.at)),
    el("span", { class: `chip kind-${event.kind}` }, event.kind),
    el("span", { class: "mono" }, shortId(event.task_id)),
    el("span", { class: "event-text" }, eventSummary(event)));
  log.append(item);
  while (log.childElementCount > MAX_LOG) log.firstElementChild.remove();
  const hint = log.parentElement && log.parentElement.querySelector(".events-hint");
  if (hint) hint.remove();
}

// ---- approvals -------------------------------------------------------------------------------

async function loadApprovals() {
  try {
    const { approvals } = await api("/v1/approvals?status=waiting");
    state.waiting = approvals || [];
  } catch (error) {
    say(`Could not load approvals: ${error.message}`);
    return;
  }
  const count = $("approvals-count");
  count.textContent = String(state.waiting.length);
  count.hidden = state.waiting.length === 0;
  count.setAttribute("aria-label", `${state.waiting.length} waiting`);
  // Keep the items still waiting as they are (a note being typed stays); add the new ones.
  const list = $("approval-list");
  const ids = new Set(state.waiting.map((a) => a.id));
  const shown = new Set();
  for (const item of [...list.children]) {
    if (ids.has(item.dataset.approvalId)) shown.add(item.dataset.approvalId);
    else item.remove();
  }
  for (const approval of state.waiting) if (!shown.has(approval.id)) list.append(approvalItem(approval));
  $("approval-empty").hidden = state.waiting.length > 0;
  if (state.open && state.waiting.some((a) => state.open.tree.has(a.task_id))) scheduleRefresh();
  if (!$("view-approvals").hidden) loadDecided();
}

async function loadDecided() {
  let rows;
  try {
    ({ approvals: rows } = await api("/v1/approvals?status=all"));
  } catch (error) {
    say(`Could not load decided approvals: ${error.message}`);
    return;
  }
  const decided = (rows || []).filter((a) => a.status !== "waiting")
    .sort((a, b) => (b.decided_at || 0) - (a.decided_at || 0)).slice(0, 20);
  $("decided-body").replaceChildren(...decided.map((a) => el("tr", { "data-approval-id": a.id },
    el("td", {}, a.question, a.note ? el("span", { class: "muted" }, ` (${a.note})`) : null),
    el("td", {}, statusChip(a.status)),
    el("td", {}, a.decided_by || ""),
    el("td", {}, when(a.decided_at)),
    el("td", {}, el("a", { href: taskHref(a.task_id), class: "mono" }, shortId(a.task_id))))));
  $("decided-empty").hidden = decided.length > 0;
}

// `where` keeps ids unique: the same approval may show in the Approvals view and in its task's.
function approvalItem(approval, where = "approvals") {
  const noteId = `${where}-note-${approval.id}`;
  const note = el("input", { id: noteId, type: "text", autocomplete: "off" });
  const status = el("p", { role: "status", class: "approval-status" });
  const decide = async (approve, button) => {
    for (const b of item.querySelectorAll("button")) b.disabled = true;
    try {
      const body = { approve, by: "page" };
      if (note.value.trim()) body.note = note.value.trim();
      const row = await api(`/v1/approvals/${encodeURIComponent(approval.id)}`, { method: "POST", body });
      status.textContent = `${(row && row.status) || (approve ? "approved" : "denied")}.`;
      item.classList.add("decided");
      await loadApprovals();
    } catch (error) {
      status.textContent = `Not recorded: ${error.message}`;
      status.className = "approval-status error";
      for (const b of item.querySelectorAll("button")) b.disabled = false;
      button.focus();
    }
  };
  const details = approval.details && Object.keys(approval.details).length
    ? el("dl", { class: "facts" }, Object.entries(approval.details).map(([k, v]) => [el("dt", {}, k), el("dd", {}, json(v))]))
    : null;
  const questionId = `${where}-question-${approval.id}`;
  const item = el("li", { class: "card approval", "data-approval-id": approval.id },
    el("h3", { class: "question", id: questionId }, approval.question),
    el("p", { class: "muted" },
      `${approval.agent || "an agent"} asked at ${clock(approval.created_at)}`,
      approval.expires_at ? `, expires ${when(approval.expires_at)}` : "",
      " · task ", el("a", { href: taskHref(approval.task_id), class: "mono" }, shortId(approval.task_id))),
    details,
    el("div", { class: "decide" },
      el("label", { for: noteId }, "Note"), note,
      el("button", { type: "button", class: "good", "aria-describedby": questionId,
        onclick: (e) => decide(true, e.currentTarget) }, "Approve"),
      el("button", { type: "button", class: "bad", "aria-describedby": questionId,
        onclick: (e) => decide(false, e.currentTarget) }, "Deny")),
    status);
  return item;
}

// ---- the router ------------------------------------------------------------------------------

async function loadRouter() {
  await Promise.all([loadVersions(), loadMetrics()]);
}

async function loadVersions() {
  let data;
  try {
    data = await api("/v1/router/versions");
  } catch (error) {
    $("versions-serving").textContent = `Could not load versions: ${error.message}`;
    return;
  }
  const serving = data.serving;
  // The API lists versions oldest first: rolling back goes to the one saved before the serving
  // one, passing over those the promotion gate kept beside (they never earned their place).
  const saved = data.versions || [];
  const index = saved.findIndex((v) => v.version === serving);
  const previous = saved.slice(0, Math.max(index, 0)).reverse().find((v) => !keptBeside(v)) || null;
  const versions = [...saved].reverse();
  const servingLine = $("versions-serving");
  servingLine.replaceChildren(serving ? `Serving ${serving}.` : "No router version serves.",
    data.routing && data.routing !== serving ? ` This server routes with ${data.routing}.` : "");
  if (previous) {
    servingLine.append(" ", el("button", { type: "button", class: "rollback",
      onclick: (e) => useVersion(previous, e.currentTarget) }, `Roll back to ${previous.version}`));
  }
  $("versions-body").replaceChildren(...versions.map((v) => {
    const isServing = v.version === serving;
    const gate = gateOf(v);
    return el("tr", { "data-version": v.version, "data-gate": gate.kind, class: isServing ? "serving" : null },
      el("th", { scope: "row" },
        el("span", { class: "version-name mono" }, v.version),
        isServing ? el("span", { class: "chip status-done" }, "serving") : null,
        el("span", { class: "version-created muted" }, when(v.created_at),
          v.parent ? ` · from ${v.parent}` : "")),
      el("td", { class: "gate" }, el("span", { class: `chip gate-${gate.kind}` }, gate.word),
        gate.reason ? el("span", { class: "gate-reason muted" }, gate.reason) : null),
      el("td", { class: "figures" }, versionFigures(v)),
      el("td", { class: "actions" }, isServing ? null : el("button", { type: "button",
        class: gate.kind === "kept" ? "kept" : null,
        "aria-label": `Use ${v.version}`, onclick: (e) => useVersion(v, e.currentTarget) }, gate.kind === "kept" ? "Use…" : "Use")));
  }));
  $("versions-empty").hidden = versions.length > 0;
}

// The promotion gate's verdict on a version (the manifest's `promotion`, absent for a version
// trained from scratch, which was not compared with another).
const keptBeside = (v) => Boolean(v.promotion) && v.promotion.promoted === false;

function gateOf(v) {
  const p = v.promotion;
  if (!p) return { kind: "none", word: "trained", reason: "not compared with another version" };
  if (p.promoted === false) return { kind: "kept", word: "kept beside", reason: p.reason || "" };
  return { kind: "promoted", word: "promoted", reason: p.reason || "" };
}

// Each figure with what it was measured on: a gate's held-out set (suites, an eval file) and a
// version's own out-of-fold figure on its training data are not comparable, and must not look it.
const METRIC_LABELS = {
  heldout_accuracy: "out-of-fold accuracy on training data",
  heldout_in_scope_accuracy: "out-of-fold in-scope accuracy on training data",
  heldout_oos_recall: "out-of-fold out-of-scope recall on training data",
  heldout_ece: "out-of-fold calibration error on training data",
};

function figure(label, value, on) {
  return el("li", { class: "figure" }, el("span", { class: "figure-label" }, label), " ",
    el("strong", {}, percent(value)), on ? el("span", { class: "figure-on muted" }, on) : null);
}

function versionFigures(v) {
  const items = [];
  const p = v.promotion;
  if (p && p.after && typeof p.after.accuracy === "number") {
    const on = p.held_out || {};
    const name = on.name || "a held-out set";
    const label = /^suites?\b/.test(name) ? "suite accuracy" : "held-out accuracy";
    const before = p.before && typeof p.before.accuracy === "number"
      ? `; the version serving then: ${percent(p.before.accuracy)}` : "";
    items.push(figure(label, p.after.accuracy,
      `on ${name}${on.size ? ` (${on.size} texts)` : ""}${before}`));
  }
  const m = v.metrics || {};
  if (typeof m.heldout_accuracy === "number") {
    const n = Number(m.heldout_examples) || 0;
    items.push(figure(METRIC_LABELS.heldout_accuracy, m.heldout_accuracy,
      `${n ? `${n} examples` : "its examples"}, each scored by ensemble members that did not train on it`));
  }
  if (!items.length && typeof v.accuracy === "number") {
    const on = v.measured_on || {};
    items.push(figure("accuracy", v.accuracy, on.name ? `on ${on.name}${on.size ? ` (${on.size})` : ""}` : ""));
  }
  if (!items.length) {
    for (const [k, value] of Object.entries(m).filter(([, x]) => typeof x === "number").slice(0, 3)) {
      items.push(el("li", { class: "figure" }, `${METRIC_LABELS[k] || k.replaceAll("_", " ")} `,
        el("strong", {}, value <= 1 && value >= 0 && !Number.isInteger(value) ? percent(value) : String(value))));
    }
  }
  return items.length ? el("ul", { class: "figures-list" }, items) : el("span", { class: "muted" }, "no figures saved");
}

// Resolves to whether the person confirmed using a version the gate kept beside (a dialog of the
// page: window.confirm cannot say why, and blocks the page's event stream while it waits).
function confirmKeptBeside(v, serving) {
  const dialog = $("use-dialog");
  $("use-heading").textContent = "Use a version the promotion gate kept beside?";
  $("use-why").textContent = `The gate kept ${v.version} beside: ${v.promotion.reason || "it did not promote it"}.`;
  $("use-cancel").textContent = serving ? `Keep ${serving}` : "Cancel";
  $("use-confirm").textContent = `Use ${v.version} anyway`;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "use"), { once: true });
    dialog.showModal();
    $("use-cancel").focus();  // the safe answer is the one Enter gives
  });
}

async function useVersion(v, button) {
  const version = v.version;
  if (keptBeside(v)) {
    const serving = $("versions-body").querySelector("tr.serving");
    if (!(await confirmKeptBeside(v, serving && serving.dataset.version))) {
      button.focus();
      return;
    }
  }
  button.disabled = true;
  try {
    await api(`/v1/router/versions/${encodeURIComponent(version)}/use`, { method: "POST" });
    say(`Router ${version} serves now.`, "ok");
    await loadRouter();
    $("versions-serving").focus();  // its button is gone: say where things stand instead
  } catch (error) {
    say(`Could not switch to ${version}: ${error.message}`);
    button.disabled = false;
  }
}

async function loadMetrics() {
  let m;
  try {
    m = await api("/v1/router/metrics");
  } catch (error) {
    $("metrics-summary").textContent = `Could not load metrics: ${error.message}`;
    return;
  }
  const summary = $("metrics-summary");
  if (!m || !m.n) {
    summary.textContent = "No labelled tasks yet: give feedback on tasks, or run a scenario suite.";
    $("matrix-wrap").replaceChildren();
    return;
  }
  summary.replaceChildren(el("span", { class: "figure-label" }, "feedback accuracy "),
    el("strong", { class: "accuracy" }, percent(m.accuracy)),
    el("span", { class: "figure-on muted" },
      `right of the ${m.n} task${m.n === 1 ? "" : "s"} people judged (feedback), routed by whichever ` +
      "version served then: not comparable with a version's suite or out-of-fold figure"));
  $("matrix-wrap").replaceChildren(...confusionTable(m.labels || [], m.confusion || []),
    perLabelTable(m.per_label || {}, m.labels || [], m.confusion || []));
}

function confusionTable(labels, matrix) {
  const max = Math.max(1, ...matrix.flat().map(Number));
  const table = el("table", { class: "matrix", "aria-describedby": "matrix-note" },
    el("caption", { class: "visually-hidden" }, "Confusion matrix"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, el("span", { class: "visually-hidden" }, "right agent")),
      labels.map((l) => el("th", { scope: "col" }, l)))),
    el("tbody", {}, labels.map((row, i) => el("tr", {},
      el("th", { scope: "row" }, row),
      labels.map((col, j) => {
        const n = Number((matrix[i] || [])[j] || 0);
        const cell = el("td", { class: n ? (i === j ? "hit" : "miss") : "zero",
          title: `${row} → ${col}: ${n}` }, String(n));
        if (n) cell.style.setProperty("--share", String(0.15 + 0.85 * (n / max)));
        return cell;
      })))));
  return [table, el("p", { id: "matrix-note", class: "muted" },
    "Rows: the agent a task belonged to; columns: where the router sent it.")];
}

// Precision of an agent nothing was sent to, and recall of one no task belonged to, are not 0%:
// there is nothing to measure them on, and the table says so ("—").
function perLabelTable(perLabel, labels, confusion) {
  const names = Object.keys(perLabel);
  if (!names.length) return "";
  const sentTo = (name) => {  // tasks the router sent to `name`: its column of the matrix
    const j = labels.indexOf(name);
    return j < 0 ? null : confusion.reduce((sum, row) => sum + Number((row || [])[j] || 0), 0);
  };
  const cell = (v, measured, why) => (measured && typeof v === "number"
    ? el("td", {}, percent(v))
    : el("td", { class: "muted", title: why }, "—", el("span", { class: "visually-hidden" }, ` (${why})`)));
  return el("table", { class: "per-label" },
    el("caption", {}, "Per agent"),
    el("thead", {}, el("tr", {}, ["Agent", "Precision", "Recall", "Tasks"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, names.map((l) => {
      const score = perLabel[l];
      const support = Number(score.support) || 0;
      return el("tr", { "data-agent": l },
        el("th", { scope: "row" }, l),
        cell(score.precision, sentTo(l) !== 0, "no task was sent to it"),
        cell(score.recall, support > 0, "no judged task belonged to it"),
        el("td", {}, String(score.support ?? "")));
    })));
}

// ---- views -----------------------------------------------------------------------------------

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const view = ["tasks", "approvals", "router"].includes(parts[0]) ? parts[0] : "tasks";
  for (const name of ["tasks", "approvals", "router"]) {
    $(`view-${name}`).hidden = name !== view;
  }
  for (const link of document.querySelectorAll(".tabs a")) {
    link.setAttribute("aria-current", link.dataset.view === view ? "page" : "false");
  }
  if (view === "tasks" && parts[1]) openTask(decodeURIComponent(parts[1]));
  if (view === "approvals") loadApprovals();  // and the decided ones, now the view shows
  if (view === "router") loadRouter();
}

async function main() {
  $("token-dialog").addEventListener("cancel", (event) => event.preventDefault());  // it must be answered
  $("submit-form").addEventListener("submit", submitTask);
  $("submit-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("submit-form").requestSubmit();
  });
  $("run-filter").addEventListener("change", (event) => {
    state.runFilter = event.target.value;
    loadTasks();
  });
  window.addEventListener("hashchange", route);
  await checkAuth();
  followEvents();
  await Promise.all([loadAgents(), loadRuns(), loadTasks(), loadApprovals()]);
  route();
  document.body.dataset.ready = "true";
}

main();
