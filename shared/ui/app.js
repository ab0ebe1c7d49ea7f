// The router and the Activities, Segments, Status and Function key pages.
import { announce, api, append, el, failure, getKey, notice, pairs, setKey, show, when } from "./render.js";
import { activityRow, cardPage, customersPage } from "./views.js";

const main = document.getElementById("main");

function route() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter(Boolean);
  const page = parts[0] || "customers";
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === `#/${page === "customer" ? "customers" : page === "segment" ? "segments" : page}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  main.replaceChildren();
  const pages = {
    customers: () => customersPage(main, params),
    customer: () => cardPage(main, decodeURIComponent(parts.slice(1).join("/")), params),
    activities: () => activitiesPage(params),
    segments: () => segmentsPage(),
    segment: () => segmentPage(decodeURIComponent(parts.slice(1).join("/"))),
    status: () => statusPage(),
    key: () => keyPage(),
  };
  const render = pages[page];
  if (!render) {
    append(main, [el("h1", { tabindex: "-1" }, "Not found"), notice("No such page.", "notice", el("p", {}, el("a", { href: "#/customers" }, "Go to Customers")))]);
  } else {
    render();
  }
  document.title = `Footprint — ${page[0].toUpperCase()}${page.slice(1)}`;
  const heading = main.querySelector("h1");
  if (heading && location.hash) heading.focus();
}

async function activitiesPage(params) {
  const type = el("input", { type: "text", id: "type", name: "type", value: params.get("type") || "", autocomplete: "off" });
  const unmatched = el("input", { type: "checkbox", id: "unmatched", name: "unmatched", checked: params.get("unmatched") === "1" });
  const form = el("form", { class: "bar", "aria-label": "Activity filters" },
    el("label", { for: "type" }, "Type (name or display type)", type),
    el("fieldset", {}, el("legend", {}, "Customer"), el("label", { class: "check", for: "unmatched" }, unmatched, "Only unmatched")),
    el("button", { type: "submit" }, "Show"));
  const results = el("section", { "aria-labelledby": "h-preview" });
  append(main, [el("h1", { tabindex: "-1" }, "Activities"), form, results]);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    if (type.value.trim()) q.set("type", type.value.trim());
    if (unmatched.checked) q.set("unmatched", "1");
    location.hash = `#/activities${q.toString() ? `?${q}` : ""}`;
  });
  announce("Loading activities…");
  try {
    const items = await api("activities", { type: params.get("type"), unmatched: params.get("unmatched") === "1" ? "true" : null, limit: 100 });
    const list = Array.isArray(items) ? items : items.items || [];
    results.append(el("h2", { id: "h-preview" }, `Newest ${list.length} unified activities`));
    if (!list.length) results.append(notice("No activity matches. Clear the filters, or ingest an export first (footprint ingest EXPORT)."));
    results.append(el("ol", { class: "timeline" }, list.map((a) => activityRow(a, true))));
    announce(`${list.length} activities`);
  } catch (error) {
    results.append(failure(error));
    announce("");
  }
}

async function segmentsPage() {
  main.append(el("h1", { tabindex: "-1" }, "Segments"));
  announce("Loading segments…");
  try {
    const list = rows(await api("segments"));
    if (!list.length) main.append(notice("No segment is configured: segments are defined beside the measures in the configuration file (see the README)."));
    main.append(el("ul", { class: "plain results" }, list.map((s) => {
      const name = String(s.Segment ?? s.Name ?? "");
      return el("li", {}, el("a", { href: `#/segment/${encodeURIComponent(name)}` }, name),
        s.Description ? el("p", {}, String(s.Description)) : null,
        el("p", { class: "meta" }, `${show(s.Members)} members`));
    })));
    announce(`${list.length} segments`);
  } catch (error) {
    main.append(error.status === 404 ? notice("This server has no segments: they come with measures and segments (SPEC §9). The other pages work without them.") : failure(error));
    announce("");
  }
}

async function segmentPage(name) {
  main.append(el("h1", { tabindex: "-1" }, `Segment ${name}`));
  const members = el("section", { "aria-labelledby": "h-members" }, el("h2", { id: "h-members" }, "Members"));
  const changes = el("section", { "aria-labelledby": "h-changes" }, el("h2", { id: "h-changes" }, "Recent changes"));
  append(main, [members, changes]);
  announce("Loading the segment…");
  await Promise.all([segmentMembers(name, members, null), segmentChanges(name, changes)]);
  announce("");
}

async function segmentMembers(name, box, continuation) {
  try {
    const page = await api(`segments/${encodeURIComponent(name)}/members`, { continuation });
    if (!continuation) box.append(el("p", { class: "meta" }, "As of ", when(page.asOf)));
    const list = el("ul", { class: "plain results" }, (page.members || []).map((m) => el("li", {},
      el("a", { href: `#/customer/${encodeURIComponent(m.CustomerId)}` }, String(m.CustomerId)),
      el("p", { class: "meta" }, (m.AlternateKeys || []).map((k) => `${k.Entity}: ${k.Key}`).join(", ")))));
    if (!continuation && !(page.members || []).length) box.append(el("p", { class: "muted" }, "No customer is in this segment now."));
    box.append(list);
    if (page.continuation) {
      const more = el("button", { type: "button", class: "secondary" }, "More members");
      more.addEventListener("click", () => { more.remove(); segmentMembers(name, box, page.continuation); });
      box.append(el("div", { class: "more" }, more));
    }
  } catch (error) {
    box.append(failure(error));
  }
}

async function segmentChanges(name, box) {
  try {
    // The feed runs oldest first from its start; the newest of its first 1000 are shown first.
    const feed = await api(`segments/${encodeURIComponent(name)}/changes`, { limit: 1000 });
    const list = (feed.changes || []).slice(-50).reverse();
    if (!list.length) { box.append(el("p", { class: "muted" }, "No change recorded yet.")); return; }
    box.append(el("ul", { class: "plain" }, list.map((c) => el("li", {}, when(c.At), ` ${show(c.Change)} · `,
      el("a", { href: `#/customer/${encodeURIComponent(c.CustomerId)}` }, String(c.CustomerId))))));
  } catch (error) {
    box.append(failure(error));
  }
}

async function statusPage() {
  main.append(el("h1", { tabindex: "-1" }, "Status"));
  const result = el("div", { role: "status", "aria-live": "polite" });
  const path = el("input", { type: "text", id: "path", name: "path", autocomplete: "off", required: true });
  const form = el("form", { class: "bar", "aria-label": "Reprocess a file" },
    el("label", { for: "path" }, "File path in the export container", path),
    el("button", { type: "submit" }, "Reprocess"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    reprocess(path.value.trim(), result);
  });
  announce("Loading status…");
  let status;
  try {
    status = await api("status");
  } catch (error) {
    main.append(failure(error));
    announce("");
    return;
  }
  const files = status.files || {};
  const total = Object.values(files).reduce((a, b) => a + b, 0);
  append(main, [
    total ? null : notice("No file has been read yet: ingest an export (footprint ingest EXPORT) or upload one to the container."),
    el("h2", {}, "Files by status"),
    pairs(Object.entries(files)),
    el("h2", {}, "Now"),
    pairs([["activities with no customer yet", status.unmatched_now]]),
    el("h2", {}, "Rows, as counted when each file was read"),
    pairs(Object.entries(status).filter(([k, v]) => typeof v === "number" && k !== "unmatched_now")),
  ]);
  const problems = el("section", { "aria-labelledby": "h-problems" }, el("h2", { id: "h-problems" }, "Failed and quarantined files"));
  const rejects = el("section", { "aria-labelledby": "h-rejects" }, el("h2", { id: "h-rejects" }, "Recent rejects"));
  append(main, [problems, rejects, el("h2", {}, "Reprocess a file"), form, result]);
  await Promise.all([problemFiles(problems, status, path, result), recentRejects(rejects)]);
  announce("");
}

async function problemFiles(box, status, pathInput, result) {
  let entries;
  try {
    const [failed, quarantined] = await Promise.all([api("files", { status: "failed" }), api("files", { status: "quarantined" })]);
    entries = [...rows(failed), ...rows(quarantined)].map((f) => ({ path: f.path ?? f.Path, status: f.status, reason: f.error ?? f.reason, attempts: f.attempts, at: f.finished_at }));
  } catch (error) {
    if (error.status !== 404) { box.append(failure(error)); return; }
    // Until /api/files exists: what /api/status tells (quarantined paths, the last error).
    const last = status.last_error;
    entries = (status.quarantined || []).map((p) => ({ path: p, status: "quarantined", reason: last && last.path === p ? last.error : null }));
    if (last && !entries.some((e) => e.path === last.path)) entries.push({ path: last.path, status: "failed", reason: last.error, at: last.at });
  }
  if (!entries.length) { box.append(el("p", { class: "muted" }, "None: every file read so far was done or skipped.")); return; }
  box.append(el("ul", { class: "plain files" }, entries.map((f) => el("li", {},
    el("p", {}, el("strong", {}, show(f.path)), ` — ${f.status}${f.attempts ? `, ${f.attempts} attempts` : ""}`, f.at ? " · " : "", f.at ? when(f.at) : null),
    el("p", {}, `Reason: ${show(f.reason)}`),
    el("button", { type: "button", class: "secondary", "aria-label": `Reprocess ${f.path}`, onclick: () => { pathInput.value = f.path; reprocess(f.path, result); } }, "Reprocess")))));
}

function rows(data) {
  return Array.isArray(data) ? data : data.items || data.files || data.rejects || [];
}

async function recentRejects(box) {
  try {
    const list = rows(await api("rejects", { limit: 20 }));
    if (!list.length) { box.append(el("p", { class: "muted" }, "No row was rejected.")); return; }
    box.append(el("ul", { class: "plain rejects" }, list.map((r) => el("li", {},
      el("p", {}, el("strong", {}, `${show(r.File ?? r.file)} row ${show(r.Row ?? r.row)}`), ` — ${show(r.Reason ?? r.reason)}`),
      el("pre", { class: "excerpt" }, show(r.Excerpt ?? r.excerpt))))));
  } catch (error) {
    box.append(error.status === 404 ? el("p", { class: "muted" }, "This server cannot list rejects yet; the Rows counts above include them, and footprint status shows them too.") : failure(error));
  }
}

async function reprocess(path, result) {
  if (!path) return;
  result.replaceChildren(el("p", {}, `Reprocessing ${path}…`));
  try {
    const report = await api("reprocess", {}, { path });
    result.replaceChildren(notice(`${path}: ${report.status}`, report.error ? "error" : "notice",
      pairs(Object.entries(report).filter(([k]) => k !== "file"))));
  } catch (error) {
    result.replaceChildren(failure(error));
  }
}

function keyPage() {
  const input = el("input", { type: "password", id: "key", name: "key", autocomplete: "off" });
  const state = el("p", { role: "status" }, getKey() ? "A key is set for this browser session." : "No key is set.");
  const form = el("form", { class: "bar" },
    el("label", { for: "key" }, "Function key", input),
    el("button", { type: "submit" }, "Save for this session"),
    el("button", { type: "button", class: "secondary", onclick: () => { setKey(""); state.textContent = "The key is forgotten."; } }, "Forget the key"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setKey(input.value.trim());
    input.value = "";
    state.textContent = getKey() ? "Saved: the key is sent with every request of this tab, never in an address." : "No key is set.";
  });
  append(main, [el("h1", { tabindex: "-1" }, "Function key"),
    el("p", {}, "In Azure the API wants a function key (Function App → App keys). Locally, footprint serve and footprint dev want one only when FOOTPRINT_HTTP_KEY is set."),
    form, state]);
}

window.addEventListener("hashchange", route);
route();
