// The Customers page and the customer card.
import { announce, api, append, el, failure, notice, pairs, show, webLink, when } from "./render.js";

const PAGE = 50;
const NAME_LIKE = /name|email|city|phone/i;

export function customerName(customer) {
  const attrs = customer.Attributes || {};
  const key = Object.keys(attrs).find((k) => /name/i.test(k) && attrs[k]);
  return key ? String(attrs[key]) : String(customer.CustomerId);
}

function cardHref(id) {
  return `#/customer/${encodeURIComponent(id)}`;
}

export async function customersPage(main, params) {
  const input = el("input", { type: "search", id: "q", name: "q", value: params.get("q") || "", required: true, autocomplete: "off" });
  const form = el("form", { class: "bar", role: "search" },
    el("label", { for: "q" }, "Key, customer id or attribute", input),
    el("button", { type: "submit" }, "Search"));
  const results = el("section", { "aria-labelledby": "results-title" });
  append(main, [el("h1", { tabindex: "-1" }, "Customers"), form, results]);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/customers?q=${encodeURIComponent(input.value.trim())}`;
  });
  const text = (params.get("q") || "").trim();
  if (!text) {
    results.append(notice("Search for a customer by a key (e.g. R-1001), a CustomerId, or any attribute such as a name or email."));
    return;
  }
  announce("Searching…");
  try {
    const found = await api("customers", { q: text, limit: 100 });
    results.append(el("h2", { id: "results-title" }, `${found.length} ${found.length === 1 ? "customer" : "customers"} match “${text}”`));
    if (!found.length) {
      results.append(notice("No customer matches. Try part of a name, an email, or a source key; a customer appears once their source file is ingested (see Status)."));
    }
    const list = el("ul", { class: "plain results" });
    for (const customer of found) list.append(resultRow(customer));
    results.append(list);
    announce(`${found.length} found`);
  } catch (error) {
    results.append(failure(error));
    announce("");
  }
}

function resultRow(customer) {
  const attrs = customer.Attributes || {};
  const details = Object.entries(attrs).filter(([k, v]) => NAME_LIKE.test(k) && v && String(v) !== customerName(customer));
  const keys = (customer.AlternateKeys || []).map((k) => `${k.Entity}: ${k.Key}`);
  return el("li", {},
    el("a", { href: cardHref(customer.CustomerId) }, customerName(customer)),
    details.length ? el("p", { class: "meta" }, details.map(([, v]) => String(v)).join(" · ")) : null,
    el("p", { class: "meta" }, `Keys: ${keys.join(", ") || "—"} · CustomerId ${customer.CustomerId}`));
}

export async function cardPage(main, id, params) {
  const title = el("h1", { tabindex: "-1" }, "Customer");
  main.append(title);
  announce("Loading the customer…");
  // The first timeline page is asked for at once, beside the profile: the row shows sooner.
  const firstPage = timelinePage(id, { type: params.get("type") || "", from: params.get("from") || "",
    to: params.get("to") ? nextDay(params.get("to")) : "" }, null);
  firstPage.catch(() => {}); // its error is shown by the timeline, if the profile loads
  let profile;
  try {
    profile = await api(`customers/${encodeURIComponent(id)}`);
  } catch (error) {
    const hint = error.status === 404 ? notice("No customer has this id. Search for them on the Customers page.", "notice",
      el("p", {}, el("a", { href: "#/customers" }, "Go to Customers"))) : null;
    main.append(failure(error));
    if (hint) main.append(hint);
    announce("");
    return;
  }
  title.textContent = customerName(profile);
  const counts = profile.ActivityCounts || {};
  append(main, [
    el("p", { class: "meta" }, `CustomerId ${profile.CustomerId} · updated `, when(profile.UpdatedAt)),
    el("div", { class: "grid" },
      section("Attributes", pairs(Object.entries(profile.Attributes || {}))),
      section("Keys by source", keysBySource(profile.AlternateKeys || []))),
    profile.Visitors ? section("Linked visitors", visitors(profile.Visitors)) : null,
    profile.Measures ? section("Measures", measures(profile.Measures)) : null,
    profile.Segments ? section("Segments", segments(profile.Segments)) : null,
    section("Activities by type", countTiles(counts)),
  ]);
  main.append(timeline(profile.CustomerId, Object.keys(counts), params, firstPage));
}

function timelinePage(customerId, query, continuation) {
  return api(`customers/${encodeURIComponent(customerId)}/activities`, { ...query, limit: PAGE, continuation });
}

function section(heading, body) {
  const id = `h-${heading.toLowerCase().replace(/[^a-z]+/g, "-")}`;
  return el("section", { "aria-labelledby": id }, el("h2", { id }, heading), body);
}

function keysBySource(keys) {
  const byEntity = new Map();
  for (const k of keys) byEntity.set(k.Entity, [...(byEntity.get(k.Entity) || []), k.Key]);
  if (!byEntity.size) return el("p", { class: "muted" }, "No source keys.");
  return pairs([...byEntity].map(([entity, list]) => [entity, list.join(", ")]));
}

function visitors(list) {
  if (!Array.isArray(list) || !list.length) return el("p", { class: "muted" }, "No visitor linked yet: a visitor joins when they sign in.");
  // Each visitor was linked when they signed in: the event (file and row) that linked them.
  return el("ul", { class: "plain" }, list.map((v) => {
    const source = v.LinkSource || {};
    return el("li", {}, el("strong", {}, show(v.VisitorId)),
      el("span", { class: "meta" }, " — signed in ", when(v.LinkedAt),
        source.File ? ` (${source.File} row ${show(source.Row)})` : ""));
  }));
}

function measures(value) {
  const entries = Array.isArray(value) ? value.map((m) => [m.Name ?? m.name, m.Value ?? m.value]) : Object.entries(value || {});
  if (!entries.length) return el("p", { class: "muted" }, "No measure computed yet.");
  return el("ul", { class: "tiles" }, entries.map(([name, v]) => el("li", {}, el("span", { class: "value" }, show(v)), show(name))));
}

function segments(value) {
  const names = (Array.isArray(value) ? value : []).map((s) => (typeof s === "string" ? s : s.Name ?? s.name ?? show(s)));
  if (!names.length) return el("p", { class: "muted" }, "In no segment.");
  return el("ul", { class: "chips", "aria-label": "Segments" }, names.map((n) => el("li", {}, n)));
}

function countTiles(counts) {
  const entries = Object.entries(counts);
  if (!entries.length) return el("p", { class: "muted" }, "No activity yet: events join this customer when their files are ingested.");
  return el("ul", { class: "tiles" }, entries.map(([type, n]) => el("li", {}, el("span", { class: "value" }, n), type)));
}

function nextDay(date) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

function timeline(customerId, types, params, firstPage) {
  const chosen = new Set((params.get("type") || "").split(",").filter(Boolean));
  const boxes = types.map((t) => el("label", { class: "check" },
    el("input", { type: "checkbox", name: "type", value: t, checked: chosen.has(t) }), t));
  const from = el("input", { type: "date", id: "from", name: "from", value: params.get("from") || "" });
  const to = el("input", { type: "date", id: "to", name: "to", value: params.get("to") || "" });
  const form = el("form", { class: "bar", "aria-label": "Timeline filters" },
    types.length ? el("fieldset", {}, el("legend", {}, "Types"), boxes) : null,
    el("label", { for: "from" }, "From", from),
    el("label", { for: "to" }, "To (inclusive)", to),
    el("button", { type: "submit" }, "Apply"));
  const heading = el("h2", { id: "h-timeline", tabindex: "-1" }, "Timeline");
  const summary = el("p", { class: "meta" });
  const list = el("ol", { class: "timeline", "aria-labelledby": "h-timeline" });
  const more = el("button", { type: "button", class: "secondary", hidden: true }, "Load more");
  const problems = el("div");
  const box = el("section", { "aria-labelledby": "h-timeline" }, heading, form, summary, problems, list, el("div", { class: "more" }, more));
  let continuation = null;
  let shown = 0;

  function query() {
    const picked = boxes.map((b) => b.firstChild).filter((c) => c.checked).map((c) => c.value);
    return { type: picked.join(","), from: from.value, to: to.value ? nextDay(to.value) : "" };
  }

  async function load(reset, pending = null) {
    problems.replaceChildren();
    announce("Loading activities…");
    try {
      const page = await (pending || timelinePage(customerId, query(), reset ? null : continuation));
      if (reset) { list.replaceChildren(); shown = 0; }
      const first = page.activities.length ? activityRow(page.activities[0]) : null;
      if (first) list.append(first);
      for (const a of page.activities.slice(1)) list.append(activityRow(a));
      shown += page.activities.length;
      continuation = page.continuation;
      more.hidden = !continuation;
      summary.textContent = shown ? `Newest first · ${shown} shown${continuation ? ", more available" : ""}` : "";
      if (!shown) problems.append(notice("No activity in this range and these types. Widen the dates or tick more types."));
      if (!reset && first) first.focus();
      announce(`${page.activities.length} activities loaded`);
    } catch (error) {
      problems.append(failure(error));
      announce("");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (from.value && to.value && from.value > to.value) {
      problems.replaceChildren(notice("“From” must be on or before “To”.", "error"));
      return;
    }
    const q = query();
    const hash = new URLSearchParams(Object.entries({ type: q.type, from: from.value, to: to.value }).filter(([, v]) => v));
    history.replaceState(null, "", `${cardHref(customerId)}${hash.toString() ? `?${hash}` : ""}`);
    load(true);
  });
  more.addEventListener("click", () => load(false));
  load(true, firstPage);
  return box;
}

export function activityRow(a, withCustomer = false) {
  const url = a.ExternalUrl;
  return el("li", { tabindex: "-1" },
    el("p", {}, el("strong", {}, show(a.Title ?? a.ActivityName)), " "),
    el("p", { class: "meta" }, when(a.ActivityTime), ` · ${show(a.ActivityTypeDisplay)} · ${show(a.ActivityType)}${a.ActivityName ? ` · ${a.ActivityName}` : ""}`),
    url ? el("p", { class: "meta" }, webLink(url)) : null,
    withCustomer ? el("p", { class: "meta" }, a.CustomerId
      ? el("a", { href: cardHref(a.CustomerId) }, `Customer ${a.CustomerId}`)
      : `Unmatched · key ${show(a.ActivityForeignKey)}`) : null);
}
