// The Bento emulator's inbox: what the app sent, newest first, live.
//
// The page is static; this script polls the JSON inspection API every 500 ms
// (the summary's counts change whenever anything arrives) and re-reads the
// lists when they do. Every value is user data (event types, emails, details,
// subjects), so the DOM is built with createElement and textContent only:
// nothing received is ever parsed as HTML here. An email's HTML is shown only
// inside an <iframe sandbox=""> loading /_emulator/inbox/emails/ID/preview,
// which the server also sandboxes with its CSP header.
"use strict";

(function () {
  const ROOT = "/_emulator";
  const POLL_MS = 500; // new records must show within 2 s
  const HIDDEN_POLL_MS = 5000; // a background tab need not hammer the emulator
  const MAX_ROWS = 500; // enough to read; keeps the DOM small with 20,000 events
  const FRESH_MS = 2500; // how long a new record stays highlighted
  const PLACEHOLDER = /\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}/g;

  // -- helpers ---------------------------------------------------------------

  // createElement with text children only: strings become Text nodes.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function str(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function compact(value, limit = 160) {
    const text = str(value);
    return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
  }

  function isEmpty(value) {
    return (
      value === null ||
      value === undefined ||
      (typeof value === "object" && Object.keys(value).length === 0)
    );
  }

  function pad(n, width = 2) {
    return String(n).padStart(width, "0");
  }

  function clock(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return String(iso);
    return (
      `${pad(date.getHours())}:${pad(date.getMinutes())}:` +
      `${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
    );
  }

  // Liquid-style text of a personalization value: as the server's preview.
  function liquidText(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "boolean") return value ? "true" : "false";
    return String(value);
  }

  // The emulator's simple {{ name }} substitution, for plain text (subjects).
  function personalize(text, values) {
    if (!values || typeof values !== "object") return text;
    return String(text).replace(PLACEHOLDER, (whole, key) =>
      Object.prototype.hasOwnProperty.call(values, key)
        ? liquidText(values[key])
        : whole,
    );
  }

  // Every key and value of a record, for the search box.
  function searchText(value) {
    const out = [];
    (function walk(v) {
      if (v === null || v === undefined) return;
      if (Array.isArray(v)) v.forEach(walk);
      else if (typeof v === "object") {
        for (const [k, item] of Object.entries(v)) {
          out.push(k);
          walk(item);
        }
      } else out.push(String(v));
    })(value);
    return out.join("\n").toLowerCase();
  }

  function badge(text, cls) {
    return el("span", { class: "badge " + (cls || ""), text });
  }

  function cell(cls, content, title) {
    return el("span", { class: "cell " + cls, title }, content);
  }

  // A subscriber's tags, one chip each.
  function tagList(tags) {
    return el("span", { class: "taglist" }, ...(tags || []).map((t) => el("span", { class: "tag", text: str(t) })));
  }

  // A subscriber's fields as name = value pairs; the rest in the JSON below.
  const FIELDS_SHOWN = 8;
  function fieldList(fields) {
    const entries = Object.entries(fields || {});
    const shown = entries.slice(0, FIELDS_SHOWN).map(([k, v]) =>
      el(
        "span",
        { class: "field" },
        el("span", { class: "k", text: k }),
        " = ",
        el("span", { class: "v", text: v === null ? "null" : compact(v, 60) }),
      ),
    );
    if (entries.length > FIELDS_SHOWN) {
      shown.push(el("span", { class: "muted", text: `+${entries.length - FIELDS_SHOWN} more` }));
    }
    return el("span", { class: "fieldlist" }, ...shown);
  }

  // -- what each kind looks like ---------------------------------------------

  function eventExtras(d) {
    const parts = [];
    if (!isEmpty(d.fields)) parts.push("fields " + compact(d.fields, 80));
    if (!isEmpty(d.details)) parts.push("details " + compact(d.details, 120));
    if (d.date) parts.push("date " + str(d.date));
    return parts.join(" · ");
  }

  function statusClass(status) {
    if (!status) return "s0";
    return "s" + String(status).charAt(0) + "xx";
  }

  const KINDS = [
    {
      id: "events",
      label: "Events",
      url: "/events?meta=1",
      typeLabel: "Type",
      byEmail: true,
      hint: "No events yet. Send some with bento_track.track(…) and flush().",
      describe(r) {
        const d = r.data || {};
        return {
          key: `${r.id}@${r.received_at}`,
          raw: r,
          type: str(d.type),
          emails: [str(d.email)],
          cells: [
            cell("type", badge(str(d.type), "event")),
            cell("email", str(d.email)),
            cell("detail", eventExtras(d)),
            cell("time", clock(r.received_at), r.received_at),
          ],
        };
      },
    },
    {
      id: "subscribers",
      label: "Subscribers",
      url: "/subscribers",
      typeLabel: "Status",
      byEmail: true,
      order: "last changed first", // by `version`: a sync's work shows on top
      hint: "No subscribers yet. Events, imports and commands create them.",
      describe(d) {
        const status = d.unsubscribed_at ? "unsubscribed" : "subscribed";
        const name = [d.first_name, d.last_name].filter(Boolean).join(" ");
        const changed = d.updated_at || d.created_at;
        return {
          key: str(d.uuid),
          // A change highlights the row as new records are, on any tab.
          version: str(changed),
          raw: d,
          type: status,
          emails: [str(d.email)],
          cells: [
            cell("email", str(d.email)),
            cell("name", name),
            cell("tags", tagList(d.tags)),
            cell("fields", fieldList(d.fields)),
            cell("status", badge(status, status)),
            cell("time changed", "changed " + clock(changed), `created ${str(d.created_at)}, last changed ${str(changed)}`),
          ],
        };
      },
    },
    {
      id: "emails",
      label: "Emails",
      url: "/emails?meta=1",
      typeLabel: "Kind",
      byEmail: true,
      hint: "No emails yet. Send one with BentoAPI.send_emails([...]).",
      describe(r) {
        const d = r.data || {};
        return {
          key: `${r.id}@${r.received_at}`,
          raw: r,
          type: d.transactional ? "transactional" : "not transactional",
          emails: [str(d.to), str(d.from)],
          subject: personalize(str(d.subject), d.personalizations),
        };
      },
    },
    {
      id: "commands",
      label: "Commands",
      url: "/commands?meta=1",
      typeLabel: "Command",
      byEmail: true,
      hint: "No commands yet. BentoAPI.add_tag(…), subscribe(…) and friends send them.",
      describe(r) {
        const d = r.data || {};
        const emails = [str(d.email)];
        if (d.command === "change_email") emails.push(str(d.query));
        return {
          key: `${r.id}@${r.received_at}`,
          raw: r,
          type: str(d.command),
          emails,
          cells: [
            cell("type", badge(str(d.command), "command")),
            cell("email", str(d.email)),
            cell("detail", isEmpty(d.query) ? "" : compact(d.query)),
            cell("time", clock(r.received_at), r.received_at),
          ],
        };
      },
    },
    {
      id: "tags",
      label: "Tags",
      url: "/tags",
      hint: "No tags yet.",
      describe(t) {
        const a = t.attributes || {};
        return {
          key: `${t.id}@${a.created_at}`,
          raw: t,
          cells: [
            cell("id", "#" + str(t.id)),
            cell("name", str(a.name)),
            cell("time", clock(a.created_at), a.created_at),
          ],
        };
      },
    },
    {
      id: "fields",
      label: "Fields",
      url: "/fields",
      hint: "No custom fields yet.",
      describe(f) {
        const a = f.attributes || {};
        return {
          key: `${f.id}@${a.created_at}`,
          raw: f,
          cells: [
            cell("id", "#" + str(f.id)),
            cell("name", str(a.key)),
            cell("detail", str(a.name)),
            cell("time", clock(a.created_at), a.created_at),
          ],
        };
      },
    },
    {
      id: "requests",
      label: "Requests",
      url: "/requests",
      typeLabel: "Status",
      hint: "No API requests yet.",
      describe(q) {
        const status = q.status ? String(q.status) : "dropped";
        return {
          key: String(q.id),
          raw: q,
          type: status,
          emails: [],
          cells: [
            cell("id", "#" + str(q.id)),
            cell("method", str(q.method)),
            cell("path", str(q.path)),
            cell("status", badge(status, statusClass(q.status))),
            cell("count", q.count ? `${q.count} record${q.count === 1 ? "" : "s"}` : ""),
            cell("time", ""), // filled in relative to the oldest request
          ],
          time: q.time,
        };
      },
    },
  ];
  const BY_ID = Object.fromEntries(KINDS.map((k) => [k.id, k]));

  // -- state -----------------------------------------------------------------

  const state = {
    tab: BY_ID[location.hash.slice(1)] ? location.hash.slice(1) : "events",
    data: Object.fromEntries(KINDS.map((k) => [k.id, []])),
    summary: null,
    signature: null,
    force: true,
    loaded: false,
    seen: Object.fromEntries(KINDS.map((k) => [k.id, new Set()])),
    open: new Set(), // "<kind>:<key>" of expanded records, kept across updates
    filters: { type: "", email: "", search: "" },
    selectedEmail: null,
    viewerKey: null,
  };

  const $ = (id) => document.getElementById(id);

  // -- rendering -------------------------------------------------------------

  function renderAccount() {
    const s = state.summary;
    const account = $("account");
    if (!s) return;
    const requests = Object.entries(s.requests || {})
      .sort()
      .map(([status, n]) => `${status === "0" ? "dropped" : status}×${n}`)
      .join(" ");
    const rate = s.rate_limit || {};
    const faults = s.faults || {};
    const pending = (faults.queue || []).length + (faults.reject || []).length;
    // Requests the emulator refused: cross-site writes (403), control bodies
    // that are not JSON (415), hosts it does not answer (400, 421). A page
    // elsewhere trying its luck shows here.
    const refused = Object.entries(s.refused || {})
      .sort()
      .map(([status, n]) => `${status}×${n}`)
      .join(" ");
    const rows = [
      ["site_uuid", s.site_uuid],
      ["publishable key", s.publishable_key],
      ["rate limit", rate.requests !== undefined ? `${rate.requests} / ${rate.window_seconds} s` : ""],
      ["requests", requests || "none"],
      ["faults", pending ? `${pending} pending` : "none"],
      ["refused", refused || "none"],
      ["storage", s.db_path],
    ];
    account.replaceChildren(
      ...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: str(v) })]),
    );
  }

  function renderTabs() {
    const tabs = $("tabs");
    if (!tabs.childElementCount) {
      // Built once and updated in place: a click never lands on a button
      // that an update is replacing, and keyboard focus stays put.
      tabs.append(
        ...KINDS.map((kind) =>
          el(
            "button",
            { type: "button", role: "tab", id: "tab-" + kind.id, class: "tab", onclick: () => selectTab(kind.id) },
            kind.label,
            el("span", { class: "count" }),
          ),
        ),
      );
    }
    for (const kind of KINDS) {
      const tab = $("tab-" + kind.id);
      const active = kind.id === state.tab;
      tab.classList.toggle("active", active);
      tab.setAttribute("aria-selected", active ? "true" : "false");
      tab.querySelector(".count").textContent = String(state.data[kind.id].length);
    }
  }

  function renderToolbar() {
    const kind = BY_ID[state.tab];
    const select = $("filter-type");
    const types = [...new Set(state.data[kind.id].map((r) => r.type))].sort();
    if (state.filters.type && !types.includes(state.filters.type)) {
      types.push(state.filters.type); // keep the choice while its records are gone
    }
    const options = JSON.stringify([kind.id, types]);
    if (select.dataset.options !== options) {
      // Rebuilt only when the choices change: an open drop-down stays open.
      select.dataset.options = options;
      select.replaceChildren(
        el("option", { value: "", text: "all" }),
        ...types.map((t) => el("option", { value: t, text: t })),
      );
    }
    select.value = state.filters.type;
    select.disabled = !kind.typeLabel;
    $("filter-type-label").textContent = kind.typeLabel || "Type";
    $("filter-email").disabled = !kind.byEmail;
    $("clear-kind").textContent = "Clear " + kind.label.toLowerCase();
  }

  function matches(record, kind) {
    const f = state.filters;
    if (f.type && record.type !== f.type) return false;
    if (f.email && kind.byEmail) {
      const needle = f.email.toLowerCase();
      if (!record.emails.some((e) => e.toLowerCase().includes(needle))) return false;
    }
    if (f.search) {
      if (record.search === undefined) record.search = searchText(record.raw);
      if (!record.search.includes(f.search.toLowerCase())) return false;
    }
    return true;
  }

  function jsonBlock(value) {
    return el("pre", { class: "json", text: JSON.stringify(value, null, 2) });
  }

  function recordNode(kind, record, fresh) {
    const id = kind.id + ":" + record.key;
    const node = el(
      "details",
      { class: "rec" + (fresh ? " fresh" : ""), "data-key": record.key },
      el("summary", { class: "row" }, ...record.cells),
      jsonBlock(record.raw),
    );
    node.open = state.open.has(id);
    node.addEventListener("toggle", () => {
      if (node.open) state.open.add(id);
      else state.open.delete(id);
    });
    return node;
  }

  function mailNode(record, fresh) {
    const d = record.raw.data || {};
    const selected = record.key === state.selectedEmail;
    return el(
      "button",
      {
        type: "button",
        class: "mail" + (selected ? " selected" : "") + (fresh ? " fresh" : ""),
        "data-key": record.key,
        "aria-pressed": selected ? "true" : "false",
        onclick: () => {
          state.selectedEmail = record.key;
          renderMain();
        },
      },
      el("span", { class: "subject", text: record.subject }),
      el("span", { class: "people", text: `${str(d.from)} → ${str(d.to)}` }),
      el("span", { class: "time", text: clock(record.raw.received_at), title: record.raw.received_at }),
    );
  }

  function renderViewer(record) {
    const viewer = $("viewer");
    if (!record) {
      state.viewerKey = null;
      viewer.replaceChildren(el("p", { class: "empty", text: "Select an email." }));
      return;
    }
    // The same email stays as it is: rebuilding would reload the preview.
    if (state.viewerKey === record.key) return;
    state.viewerKey = record.key;
    const r = record.raw;
    const d = r.data || {};
    const meta = el(
      "dl",
      { class: "meta" },
      el("dt", { text: "From" }),
      el("dd", { class: "from", text: str(d.from) }),
      el("dt", { text: "To" }),
      el("dd", { class: "to", text: str(d.to) }),
      el("dt", { text: "Received" }),
      el("dd", { text: `${str(r.received_at)} (request #${str(r.request_id)})` }),
      el("dt", { text: "Transactional" }),
      el("dd", { text: d.transactional ? "yes" : "no" }),
    );
    const values = d.personalizations && typeof d.personalizations === "object" ? d.personalizations : {};
    const personalizations = isEmpty(values)
      ? el("p", { class: "muted", text: "No personalizations." })
      : el(
          "table",
          { class: "personalizations" },
          el("thead", {}, el("tr", {}, el("th", { text: "{{ name }}" }), el("th", { text: "value" }))),
          el(
            "tbody",
            {},
            ...Object.entries(values).map(([k, v]) =>
              el("tr", {}, el("td", { text: k }), el("td", { text: liquidText(v) })),
            ),
          ),
        );
    // sandbox="" before src: no scripts, no same origin, no forms, no popups.
    const frame = document.createElement("iframe");
    frame.setAttribute("sandbox", "");
    frame.setAttribute("referrerpolicy", "no-referrer");
    frame.setAttribute("title", "Email preview");
    frame.className = "preview";
    frame.src = `${ROOT}/inbox/emails/${encodeURIComponent(r.id)}/preview`;
    viewer.replaceChildren(
      el("h2", { class: "subject", text: record.subject }),
      meta,
      el("h3", { text: "Personalizations" }),
      personalizations,
      el("h3", {}, "Preview ", el("small", { class: "muted", text: "sandboxed: no scripts, no remote images" })),
      frame,
      el("h3", { text: "HTML source" }),
      el("pre", { class: "source", text: str(d.html_body) }),
      el("details", { class: "raw" }, el("summary", { text: "JSON" }), jsonBlock(r)),
    );
  }

  function renderMain() {
    const kind = BY_ID[state.tab];
    const all = state.data[kind.id];
    const shown = all.filter((r) => matches(r, kind));
    const list = $("list");
    const now = Date.now();
    const fresh = (r) => r.arrived !== undefined && now - r.arrived < FRESH_MS;
    const visible = shown.slice(0, MAX_ROWS);
    let nodes;
    if (kind.id === "emails") {
      if (!visible.some((r) => r.key === state.selectedEmail)) {
        state.selectedEmail = visible.length ? visible[0].key : null;
      }
      nodes = visible.map((r) => mailNode(r, fresh(r)));
      renderViewer(visible.find((r) => r.key === state.selectedEmail));
    } else {
      if (kind.id === "requests" && all.length) {
        // Request times are the emulator's monotonic clock: show them as
        // seconds after the oldest request still in the log.
        const start = all.reduce((min, r) => Math.min(min, r.time), Infinity);
        for (const r of visible) {
          r.cells[r.cells.length - 1].textContent = `+${(r.time - start).toFixed(3)} s`;
        }
      }
      nodes = visible.map((r) => recordNode(kind, r, fresh(r)));
    }
    list.replaceChildren(...nodes);
    list.setAttribute("data-kind", kind.id);
    const main = $("main");
    main.classList.toggle("split", kind.id === "emails");
    $("viewer").hidden = kind.id !== "emails";
    let note;
    if (!all.length) note = state.loaded ? kind.hint : "Loading…";
    else if (!shown.length) note = `None of the ${all.length} ${kind.label.toLowerCase()} match the filters.`;
    else if (shown.length > visible.length) note = `Newest ${visible.length} of ${shown.length} shown.`;
    else note = `${shown.length} of ${all.length} ${kind.label.toLowerCase()}, ${kind.order || "newest first"}.`;
    $("note").textContent = note;
  }

  function renderAll() {
    renderAccount();
    renderTabs();
    renderToolbar();
    renderMain();
  }

  function selectTab(id) {
    if (id === state.tab) return;
    state.tab = id;
    state.filters.type = ""; // each kind has its own types
    history.replaceState(null, "", "#" + id);
    renderAll();
  }

  function setStatus(ok, text) {
    const status = $("status");
    status.textContent = text;
    status.classList.toggle("offline", !ok);
  }

  // -- talking to the emulator -----------------------------------------------

  async function getJSON(path) {
    const response = await fetch(ROOT + path, {
      headers: { Accept: "application/json" },
      cache: "no-store",
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  async function refresh() {
    const summary = await getJSON("/");
    state.summary = summary;
    // Every stored record comes with a logged request, and clearing changes
    // the counts: when neither moved, the lists did not either.
    const signature = JSON.stringify([summary.counts, summary.requests]);
    if (signature !== state.signature || state.force) {
      state.force = false;
      const lists = await Promise.all(KINDS.map((k) => getJSON(k.url)));
      const now = Date.now();
      KINDS.forEach((kind, i) => {
        const seen = state.seen[kind.id];
        const records = lists[i].map((r) => kind.describe(r)).reverse();
        if (kind.order) {
          // ISO times sort as text; the sort is stable, so ties stay newest first.
          records.sort((a, b) => (a.version < b.version) - (a.version > b.version));
        }
        for (const r of records) {
          // Highlight what arrived (or changed) while the page was open, on
          // any tab.
          const mark = r.version ? `${r.key}#${r.version}` : r.key;
          if (state.loaded && !seen.has(mark)) r.arrived = now;
          seen.add(mark);
        }
        state.data[kind.id] = records;
      });
      state.signature = signature;
      renderAll();
      state.loaded = true;
    } else {
      renderAccount();
    }
  }

  let timer = 0;
  let busy = false;
  let again = false;

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(tick, ms);
  }

  async function tick() {
    if (busy) {
      again = true; // one refresh at a time; run once more when it ends
      return;
    }
    busy = true;
    try {
      await refresh();
      setStatus(true, "live · " + clock(new Date().toISOString()));
    } catch (error) {
      setStatus(false, "offline, retrying: " + (error && error.message ? error.message : error));
    } finally {
      busy = false;
      const next = again ? 0 : document.hidden ? HIDDEN_POLL_MS : POLL_MS;
      again = false;
      schedule(next);
    }
  }

  async function clear(paths) {
    try {
      for (const path of paths) {
        // The emulator takes writes from its own origin only. The
        // page's policy is no-referrer, under which the Fetch standard lets a
        // browser send `Origin: null` even to its own origin: "same-origin"
        // keeps this request's Origin (and Referer) the page's own.
        const response = await fetch(ROOT + path, {
          method: "DELETE",
          referrerPolicy: "same-origin",
          credentials: "same-origin",
        });
        if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      }
    } catch (error) {
      setStatus(false, "clear failed: " + (error && error.message ? error.message : error));
    }
    state.force = true;
    schedule(0);
  }

  // -- wiring ----------------------------------------------------------------

  function onFilter(key, input) {
    input.addEventListener("input", () => {
      state.filters[key] = input.value.trim();
      renderMain();
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("filter-type").addEventListener("change", (e) => {
      state.filters.type = e.target.value;
      renderMain();
    });
    onFilter("email", $("filter-email"));
    onFilter("search", $("filter-search"));
    $("clear-kind").addEventListener("click", () => clear(["/" + state.tab]));
    $("clear-all").addEventListener("click", () => clear(["/data", "/requests"]));
    window.addEventListener("hashchange", () => {
      const id = location.hash.slice(1);
      if (BY_ID[id]) selectTab(id);
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) schedule(0);
    });
    renderAll();
    schedule(0);
  });
})();
