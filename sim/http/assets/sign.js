// Client-side signing for the gateway's pages: the private key never leaves this tab.
// The PEM a user loads is imported as a non-extractable WebCrypto key held in memory
// only (never stored); every /api request is signed as docs/gateway.md describes.
"use strict";

const Signer = (() => {
  let key = null;
  let identity = "";

  const hex = (bytes) =>
    Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
  const unhex = (text) => new Uint8Array(text.match(/../g).map((h) => parseInt(h, 16)));
  const utf8 = (text) => new TextEncoder().encode(text);

  async function sha256hex(bytes) {
    return hex(await crypto.subtle.digest("SHA-256", bytes));
  }

  async function load(name, pem) {
    const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
    const der = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    key = await crypto.subtle.importKey(
      "pkcs8", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    identity = name.trim();
  }

  function forget() {
    key = null;
    identity = "";
  }

  // Raw r||s as hex; the gateway turns it into the MSP's low-S DER.
  async function sign(bytes) {
    if (!key) throw new Error("load a key first");
    return hex(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key, bytes));
  }

  async function request(method, target, body, contentType) {
    const bytes = body === undefined ? new Uint8Array()
      : body instanceof Uint8Array ? body : utf8(JSON.stringify(body));
    const timestamp = Date.now();
    const nonce = hex(crypto.getRandomValues(new Uint8Array(16)));
    const line = [method, target, await sha256hex(bytes), String(timestamp), nonce].join("\n");
    const headers = {
      "X-Ledgersim-Identity": identity,
      "X-Ledgersim-Timestamp": String(timestamp),
      "X-Ledgersim-Nonce": nonce,
      "X-Ledgersim-Signature": await sign(utf8(line)),
    };
    if (bytes.length) headers["Content-Type"] = contentType || "application/json";
    const response = await fetch(target, { method, headers, body: bytes.length ? bytes : undefined });
    return response;
  }

  async function json(method, target, body) {
    const response = await request(method, target, body);
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    return answer;
  }

  // Steps 2 and 3 of a write: sign the proposal, then the endorsed transaction.
  async function write(prepared) {
    const endorsed = await json("POST", prepared.next, { signature: await sign(unhex(prepared.bytes)) });
    return json("POST", endorsed.next, { signature: await sign(unhex(endorsed.bytes)) });
  }

  // A read: where the gateway cannot ask as us (a live network answers 409 with kind
  // "sign-to-read"), prepare it like a write and sign the proposal; the endorsement
  // carries the answer, and nothing is ordered.
  async function read(target, fn, args) {
    const response = await request("GET", target);
    const answer = await response.json();
    if (response.ok) return answer;
    if (answer.kind !== "sign-to-read") throw new Error(answer.error || response.statusText);
    const prepared = await json("POST", "/api/tx", { function: fn, args, evaluate: true });
    const endorsed = await json("POST", prepared.next, { signature: await sign(unhex(prepared.bytes)) });
    return endorsed.response;
  }

  return {
    load, forget, sign, request, json, read, write, sha256hex,
    get identity() { return identity; },
    get ready() { return key !== null; },
  };
})();
