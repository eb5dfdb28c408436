// An offline docs page: lists /openapi.json and sends signed requests from a form.
"use strict";

const $ = (selector) => document.querySelector(selector);

function field(label, name) {
  const wrap = document.createElement("label");
  wrap.textContent = label + " ";
  const input = document.createElement("input");
  input.type = "text";
  input.name = name;
  wrap.append(input, " ");
  return wrap;
}

function operation(path, method, op) {
  const box = document.createElement("section");
  const title = document.createElement("h2");
  title.innerHTML = "";
  title.append(Object.assign(document.createElement("code"), { textContent: `${method.toUpperCase()} ${path}` }),
    " ", op.summary);
  box.append(title);
  const form = document.createElement("form");
  for (const p of op.parameters || []) form.append(field(`${p.name} (${p.in})`, p.name));
  let body = null;
  if (op.requestBody && op.requestBody.content["application/json"]) {
    body = document.createElement("textarea");
    body.placeholder = "JSON body";
    form.append(body);
  }
  const send = Object.assign(document.createElement("button"), { type: "submit", textContent: "Send" });
  const out = document.createElement("pre");
  form.append(send);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let target = path;
    const query = [];
    for (const p of op.parameters || []) {
      const value = form.elements[p.name].value;
      if (p.in === "path") target = target.replace(`{${p.name}}`, encodeURIComponent(value));
      else if (value) query.push(`${p.name}=${encodeURIComponent(value)}`);
    }
    if (query.length) target += "?" + query.join("&");
    try {
      const payload = body && body.value.trim() ? JSON.parse(body.value) : undefined;
      const response = await Signer.request(method.toUpperCase(), target, payload);
      out.textContent = `${response.status}\n` + JSON.stringify(await response.json(), null, 2);
    } catch (error) {
      out.textContent = error.message;
    }
  });
  box.append(form, out);
  return box;
}

async function main() {
  const spec = await (await fetch("/openapi.json")).json();
  const list = $("#operations");
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) list.append(operation(path, method, op));
  }
}

$("#load").addEventListener("click", async () => {
  try {
    await Signer.load($("#identity").value, $("#pem").value);
    $("#pem").value = "";
    $("#message").textContent = `key loaded for ${Signer.identity}`;
  } catch (error) {
    $("#message").textContent = `could not load the key: ${error.message}`;
  }
});
main();
