// The console's three views over the gateway's API. Every call is signed in this tab
// (sign.js); the gateway only ever sees signatures.
"use strict";

const $ = (selector) => document.querySelector(selector);
const text = (value) => (value === null || value === undefined ? "" : String(value));

function say(message, isError) {
  const box = $("#message");
  box.textContent = message;
  box.className = isError ? "error" : "";
}

function fill(table, rows) {
  const body = $(table + " tbody");
  body.replaceChildren(...rows);
}

function row(cells, className) {
  const tr = document.createElement("tr");
  if (className) tr.className = className;
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.append(cell); else td.textContent = text(cell);
    tr.append(td);
  }
  return tr;
}

function button(label, action) {
  const b = document.createElement("button");
  b.textContent = label;
  b.addEventListener("click", async () => {
    b.disabled = true;
    try { await action(); } catch (error) { say(error.message, true); } finally { b.disabled = false; }
  });
  return b;
}

const enc = encodeURIComponent;

async function catalog() {
  return (await Signer.json("GET", "/api/patches")).patches;
}

async function approve(p) {
  say(`approving ${p.name} ${p.version}: signing in the browser…`);
  const prepared = await Signer.json("POST", `/api/patches/${enc(p.name)}/${enc(p.version)}/approve`);
  const done = await Signer.write(prepared);
  say(`approve ${p.name} ${p.version}: ${done.validation_code} (tx ${done.tx_id.slice(0, 12)})`);
  await refresh();
}

async function withdraw(p) {
  const reason = prompt(`Why withdraw ${p.name} ${p.version}?`);
  if (!reason) return;
  const prepared = await Signer.json("POST", `/api/patches/${enc(p.name)}/${enc(p.version)}/withdraw`, { reason });
  const done = await Signer.write(prepared);
  say(`withdraw ${p.name} ${p.version}: ${done.validation_code}`);
  await refresh();
}

async function adminView() {
  const patches = await catalog();
  fill("#pending", patches.filter((p) => p.status === "pending").map((p) => {
    const actions = document.createElement("span");
    actions.append(button("Approve", () => approve(p)), " ", button("Withdraw", () => withdraw(p)));
    return row([p.name, p.version, `${p.signoffs} of ${p.approvals_required}`, p.approvals.join(", "),
      p.deployer, actions]);
  }));
  try {
    const report = await Signer.read("/api/compliance", "compliance", []);
    fill("#compliance", report.rows.map((r) => row([
      r.user_id, r.patch, r.version, r.status, r.installed_version, r.deadline_ms, r.overdue ? "OVERDUE" : "",
    ], r.overdue ? "overdue" : "")));
    $("#compliance-summary").textContent = Object.entries(report.summary).map(([k, v]) => `${k}: ${v}`).join(", ");
  } catch (error) {
    fill("#compliance", [row([error.message])]);
  }
}

async function showHistory() {
  const name = $("#history-name").value.trim();
  if (!name) return;
  const answer = await Signer.read(`/api/patches/${enc(name)}/history`, "history", [name]);
  fill("#history", answer.events.map((e) => row([
    e.timestamp_ms, e.version, e.action, e.creator ? e.creator.name : "", e.tx_id.slice(0, 12),
  ])));
}

async function download(p) {
  const release = await Signer.read(`/api/patches/${enc(p.name)}/metadata?version=${enc(p.version)}`,
    "metadata", [p.name, p.version]);
  const file = release.manifest.file;
  const response = await Signer.request("GET", `/api/files/${file.sha256}?size=${file.size}`);
  if (!response.ok) throw new Error((await response.json()).error);
  const bytes = new Uint8Array(await response.arrayBuffer());
  const digest = await Signer.sha256hex(bytes);
  if (bytes.length !== file.size || digest !== file.sha256) {
    throw new Error(`the file does not match the ledger (sha256 ${digest.slice(0, 16)}…): not installing`);
  }
  const prepared = await Signer.json("POST", `/api/patches/${enc(p.name)}/${enc(p.version)}/download`, { sha256: digest });
  const done = await Signer.write(prepared);
  say(`downloaded ${p.name} ${p.version}: ${bytes.length} bytes, sha256 checked; record ${done.validation_code}`);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes]));
  link.download = file.name;
  link.textContent = `save ${file.name}`;
  $("#message").append(" ", link);
}

// The gateway cannot order the metadata call for us (it would have to sign as us): we sign
// it here, then ask for the proof of the block that committed it, to save as a file that
// `ledgersim patch verify-proof FILE --msp DIR` checks offline.
async function proof(p) {
  say(`proof of ${p.name} ${p.version}: signing the metadata call in the browser…`);
  const prepared = await Signer.json("POST", "/api/tx", { function: "metadata", args: [p.name, p.version] });
  const done = await Signer.write(prepared);
  const target = `/api/patches/${enc(p.name)}/proof?version=${enc(p.version)}&tx_id=${enc(done.tx_id)}`;
  const response = await Signer.request("GET", target);
  if (!response.ok) throw new Error((await response.json()).error);
  const body = await response.text();
  const block = JSON.parse(body);
  say(`proof of ${p.name} ${p.version}: metadata call ${done.validation_code} (tx ${done.tx_id.slice(0, 12)}), ` +
    `${Object.keys(block.commit_signers).length} commit signers`);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([body], { type: "application/json" }));
  link.download = `${p.name}-${p.version}.proof.json`;
  link.id = "proof-link";
  link.textContent = `save ${link.download}`;
  $("#message").append(" ", link);
}

async function report(p) {
  const prepared = await Signer.json("POST", `/api/patches/${enc(p.name)}/${enc(p.version)}/report`,
    { outcome: "installed", rebooted: false });
  const done = await Signer.write(prepared);
  say(`report ${p.name} ${p.version}: ${done.validation_code}`);
}

async function deviceView() {
  const patches = await catalog();
  fill("#catalog", patches.map((p) => {
    const actions = document.createElement("span");
    if (p.status === "released") {
      actions.append(button("Download", () => download(p)), " ", button("Download proof", () => proof(p)),
        " ", button("Report installed", () => report(p)));
    }
    const status = Object.assign(document.createElement("span"), { className: p.status, textContent: p.status });
    return row([p.name, p.version, status, `${p.policy.install}, ${p.policy.reboot}`, actions]);
  }));
}

async function register() {
  const groups = $("#device-groups").value.split(",").map((g) => g.trim()).filter(Boolean);
  const prepared = await Signer.json("POST", "/api/devices", { os: $("#device-os").value.trim(), groups });
  const done = await Signer.write(prepared);
  say(`register: ${done.validation_code}`);
}

// The activity strip: bars for committed transactions per second (from block times),
// a line for messages per second (from the sessions this gateway ran), and a mark per event.
const MARK = { view_change: "#1f5fbf", fault: "#c07400", down: "#c0261b" };
function drawStrip(activity) {
  const canvas = $("#rate-strip");
  const g = canvas.getContext("2d");
  const txs = activity.ledger.per_second, msgs = activity.gateway_sessions.per_second;
  const w = canvas.width, h = canvas.height, step = w / Math.max(txs.length, 1);
  const first = txs.length ? txs[0].second : 0;
  g.clearRect(0, 0, w, h);
  const txMax = Math.max(1, ...txs.map((s) => s.transactions));
  g.fillStyle = "#2f6fb3";
  txs.forEach((s, i) => {
    const bar = (h - 12) * s.transactions / txMax;
    g.fillRect(i * step + 1, h - bar, Math.max(step - 2, 1), bar);
  });
  const msgMax = Math.max(1, ...msgs.map((s) => s.messages));
  g.strokeStyle = "#6b7785";
  g.beginPath();
  msgs.forEach((s, i) => {
    const x = i * step + step / 2, y = h - 2 - (h - 14) * s.messages / msgMax;
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
  for (const e of events(activity)) {
    g.fillStyle = MARK[e.kind] || "#000";
    g.fillRect((e.t_ms / 1000 - first) * step, 0, 2, h);
  }
  g.fillStyle = "#1d232a";
  g.font = "11px sans-serif";
  g.fillText(`max ${txMax} tx/s, ${msgMax} msg/s`, 4, 11);
}

function events(activity) {
  return [...activity.ledger.events, ...activity.gateway_sessions.events].sort((a, b) => a.t_ms - b.t_ms);
}

async function activityView() {
  const seconds = Math.min(300, Math.max(1, parseInt($("#window-s").value, 10) || 60));
  const activity = await Signer.json("GET", `/api/network/activity?seconds=${seconds}`);
  const committed = activity.ledger.per_second.reduce((sum, s) => sum + s.transactions, 0);
  $("#throughput").textContent = `${activity.ledger.tx_per_s.toFixed(2)} committed transactions/s ` +
    `(${committed} in the last ${activity.ledger.seconds} s, up to ${activity.until_ms} ms); ` +
    (activity.gateway_sessions.source || `${activity.gateway_sessions.sessions} sessions run by this gateway`);
  drawStrip(activity);
  fill("#events", events(activity).reverse().map((e) => row([
    e.t_ms, e.kind.replace("_", " "), e.replica, e.view, e.detail, e.source,
  ], e.kind)));
  return activity;
}

let shownHeight = 0;
async function networkView() {
  const net = await Signer.json("GET", "/api/network");
  const down = (await activityView()).down;
  fill("#nodes", net.nodes.map((n) => {
    const state = !n.up ? "DOWN" : down[n.replica] ? `DOWN (${down[n.replica]})`
      : n.byzantine ? `up (${n.byzantine})` : "up";
    return row([n.replica, n.peer, state, n.role, n.view, n.height, n.head ? n.head.slice(0, 16) : ""],
      n.up && !down[n.replica] ? "" : "down");
  }));
  const height = Math.max(...net.nodes.map((n) => n.height || 0));
  const first = Math.max(shownHeight, height - 10, 1);
  for (let number = first; number < height; number++) {
    const block = await Signer.json("GET", `/api/blocks/${number}`);
    const txs = block.data.map((t, i) => `${t.function} by ${t.creator} (${block.metadata.validation_codes[i]})`);
    $("#blocks tbody").prepend(row([number, block.metadata.timestamp_ms, block.metadata.view, txs.join("; ")]));
  }
  shownHeight = Math.max(shownHeight, height);
}

const views = { admin: adminView, device: deviceView, network: networkView };
let current = "admin";

async function refresh() {
  if (!Signer.ready) return;
  try { await views[current](); } catch (error) { say(error.message, true); }
}

document.querySelectorAll("nav button").forEach((b) => b.addEventListener("click", () => {
  current = b.dataset.view;
  document.querySelectorAll("nav button").forEach((x) => x.classList.toggle("active", x === b));
  document.querySelectorAll(".view").forEach((v) => v.classList.toggle("active", v.id === "view-" + current));
  refresh();
}));

$("#pemfile").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (file) $("#pem").value = await file.text();
});

$("#load").addEventListener("click", async () => {
  try {
    await Signer.load($("#identity").value, $("#pem").value);
    $("#pem").value = "";
    const me = await Signer.json("GET", "/api/whoami");
    $("#status").textContent = `signed in as ${me.name} (${me.role}, ${me.mspid})`;
    say("key loaded into this tab's memory");
    await refresh();
  } catch (error) {
    Signer.forget();
    say(`could not load the key: ${error.message}`, true);
  }
});

$("#forget").addEventListener("click", () => {
  Signer.forget();
  $("#status").textContent = "no key loaded";
  say("key forgotten");
});

$("#history-load").addEventListener("click", () => showHistory().catch((e) => say(e.message, true)));
$("#register").addEventListener("click", () => register().catch((e) => say(e.message, true)));
setInterval(() => { if (current === "network") refresh(); }, 2000);
