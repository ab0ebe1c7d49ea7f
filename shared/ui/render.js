// DOM helpers and the API client. Every value from an export becomes a text node: no
// innerHTML anywhere, and links only for http: and https: addresses.

const KEY = "footprint.functionKey";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function safeUrl(value) {
  if (typeof value !== "string") return null;
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

// A link for a web address, plain text for anything else (javascript:, data:, garbage).
export function webLink(value, text) {
  const href = safeUrl(value);
  const label = text ?? String(value ?? "");
  return href ? el("a", { href, rel: "noopener noreferrer nofollow" }, label) : el("span", {}, label);
}

export function pairs(entries) {
  const dl = el("dl", { class: "pairs" });
  for (const [name, value] of entries) dl.append(el("dt", {}, name), el("dd", {}, show(value)));
  return dl;
}

export function show(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function when(iso) {
  if (!iso) return el("span", {}, "—");
  const date = new Date(iso);
  const text = Number.isNaN(date.getTime()) ? String(iso) : date.toISOString().replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC");
  return el("time", { datetime: String(iso) }, text);
}

export function notice(text, kind = "notice", ...extra) {
  return el("div", { class: kind, role: kind === "error" ? "alert" : null }, el("p", {}, text), ...extra);
}

export function announce(text) {
  document.getElementById("live").textContent = text;
}

export function getKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, message, hint) {
    super(message);
    this.status = status;
    this.hint = hint;
  }
}

let pending = 0;

// GET or POST an API route relative to the UI (../customers from /api/ui/), key in a header;
// <main> is aria-busy while any call is under way.
export async function api(path, params = {}, body = undefined) {
  const main = document.getElementById("main");
  pending += 1;
  main.setAttribute("aria-busy", "true");
  try {
    return await call(path, params, body);
  } finally {
    pending -= 1;
    if (!pending) main.removeAttribute("aria-busy");
  }
}

async function call(path, params, body) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, value);
  }
  const url = `../${path}${query.toString() ? `?${query}` : ""}`;
  const headers = { accept: "application/json" };
  const key = getKey();
  if (key) headers["x-functions-key"] = key;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method: body === undefined ? "GET" : "POST", headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "The Footprint API cannot be reached.",
      "Is the server still running? Start it again (footprint serve, footprint dev or the Functions app) and reload.");
  }
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  throw explain(response.status, data, path);
}

function explain(status, data, path) {
  const said = data && typeof data.error === "string" ? data.error : "";
  if (status === 401 || status === 403) {
    return new ApiError(status, getKey() ? "The function key was refused." : "This server wants a function key.",
      "Enter the right key on the Function key page (Azure portal: Function App → App keys; locally: FOOTPRINT_HTTP_KEY).");
  }
  if (status === 404 && said === "no such route") {
    return new ApiError(status, `This server has no /api/${path.split("/")[0]} route.`, "It may be an older Footprint; the CLI shows the same data.");
  }
  if (status === 503) {
    return new ApiError(status, "The store is unavailable.", "Check the store setting (FOOTPRINT_STORE, FOOTPRINT_STORAGE) and that storage is reachable, then try again.");
  }
  return new ApiError(status, said || `The server answered ${status}.`, status >= 500 ? "The server log says more." : "");
}

export function failure(error) {
  if (!(error instanceof ApiError)) throw error;
  const hint = error.hint ? el("p", {}, error.hint) : null;
  const keyLink = error.status === 401 || error.status === 403 ? el("p", {}, el("a", { href: "#/key" }, "Enter the function key")) : null;
  return notice(error.message, "error", hint, keyLink);
}
