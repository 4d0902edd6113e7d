/* Pension Research Assistant: the browser client. Plain JavaScript, no build step, no dependencies.
 *
 * Talks to the service at the same origin:
 *   POST /chat (stream: true)  -> server-sent events: token*, citations, done (or error)
 *   GET/POST /documents, DELETE /documents/{id}, GET /health
 *   GET /documents/{id}/view (the cited spans in their place), /documents/{id}/file (the stored original)
 * Every piece of text that comes from the server or the user is put into the DOM with text nodes
 * (textContent / append(string)); innerHTML is never used.
 */
"use strict";

(() => {
  const KEY_STORAGE = "pensionAssistant.apiKey";
  const MARKER_RE = /\[(\d+(?:\s*[,，]\s*\d+)*)\]/g;
  const LIST_ITEM_RE = /^\s*(?:[-*•·]\s|\d{1,3}[.)]\s|\d{1,3}、|\([0-9a-zA-Z]{1,4}\)\s|[（(][一二三四五六七八九十]+[)）])/;
  const CJK_RE = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/;
  const MAX_VIEW_SPANS = 20; // the server's limit of spans per view
  const numberFormat = new Intl.NumberFormat();

  const $ = (id) => document.getElementById(id);
  const el = {
    messages: $("messages"),
    emptyState: $("empty-state"),
    form: $("chat-form"),
    input: $("message-input"),
    send: $("send-button"),
    stop: $("stop-button"),
    newConversation: $("new-conversation"),
    health: $("health"),
    healthText: $("health-text"),
    docList: $("document-list"),
    docStatus: $("documents-status"),
    docHeading: $("documents-heading"),
    refreshDocs: $("refresh-documents"),
    uploadForm: $("upload-form"),
    uploadInput: $("upload-input"),
    uploadButton: $("upload-button"),
    uploadStatus: $("upload-status"),
    panel: $("citation-panel"),
    panelMarker: $("citation-marker"),
    panelTitle: $("citation-title"),
    panelDocument: $("citation-document"),
    panelPage: $("citation-page"),
    panelQuote: $("citation-quote"),
    panelTranslation: $("citation-translation"),
    panelTranslationText: $("citation-translation-text"),
    panelClose: $("citation-close"),
    panelSection: $("citation-section"),
    panelShow: $("citation-show"),
    panelFile: $("citation-file"),
    panelUrl: $("citation-url"),
    view: $("document-view"),
    viewText: $("view-text"),
    viewLocation: $("view-location"),
    viewCount: $("view-quote-count"),
    viewPrevQuote: $("view-prev-quote"),
    viewNextQuote: $("view-next-quote"),
    viewEarlier: $("view-earlier"),
    viewLater: $("view-later"),
    viewStatus: $("view-status"),
    keyButton: $("api-key-button"),
    keyDialog: $("api-key-dialog"),
    keyForm: $("api-key-form"),
    keyInput: $("api-key-input"),
    keyReason: $("api-key-reason"),
    keyClear: $("api-key-clear"),
    keyCancel: $("api-key-cancel"),
  };

  const state = {
    conversationId: null,
    streaming: false,
    controller: null,
    apiKey: readStoredKey(),
    panelTrigger: null,
    healthTimer: null,
    // The document view: the cited spans of the open citation's document in this answer, which one is in focus,
    // the last view the server sent, and a counter so that only the latest request is drawn.
    viewSpans: [],
    viewFocus: 0,
    viewData: null,
    viewTicket: 0,
  };

  // ---------------------------------------------------------------- helpers

  function readStoredKey() {
    try {
      return localStorage.getItem(KEY_STORAGE) || "";
    } catch (_) {
      return "";
    }
  }

  function storeKey(key) {
    state.apiKey = key;
    try {
      if (key) localStorage.setItem(KEY_STORAGE, key);
      else localStorage.removeItem(KEY_STORAGE);
    } catch (_) {
      /* storage may be disabled; the key still works for this page */
    }
    updateKeyButton();
  }

  function updateKeyButton() {
    el.keyButton.textContent = state.apiKey ? "API key: set" : "API key";
    el.keyButton.setAttribute("aria-label", state.apiKey ? "API key (set): change or forget it" : "Set an API key");
  }

  /** Build an element: h("p", {className: "x", dataset: {a: 1}}, "text", child). Children are text or nodes. */
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [name, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) continue;
        if (name === "className") node.className = value;
        else if (name === "dataset") Object.assign(node.dataset, value);
        else if (name === "text") node.textContent = value;
        else if (name.startsWith("on")) node.addEventListener(name.slice(2).toLowerCase(), value);
        else node.setAttribute(name, value === true ? "" : String(value));
      }
    }
    for (const child of children) {
      if (child !== undefined && child !== null && child !== false) node.append(child);
    }
    return node;
  }

  function langOf(text) {
    return CJK_RE.test(text || "") ? "zh-Hans" : "en";
  }

  function formatCount(value) {
    return typeof value === "number" && Number.isFinite(value) ? numberFormat.format(value) : "?";
  }

  /** "1 passage", "42 passages". */
  function plural(value, noun) {
    return `${formatCount(value)} ${noun}${value === 1 ? "" : "s"}`;
  }

  class ApiError extends Error {
    constructor(message, status, type) {
      super(message);
      this.name = "ApiError";
      this.status = status;
      this.type = type || "error";
    }
  }

  /** The message of an error body: {"error": {"type", "message"}}, or FastAPI's {"detail": ...}. */
  function describeErrorBody(body) {
    if (!body || typeof body !== "object") return null;
    if (body.error) {
      if (typeof body.error === "string") return { message: body.error, type: "error" };
      return { message: body.error.message || body.error.type || "error", type: body.error.type };
    }
    if (body.detail !== undefined) {
      const detail = body.detail;
      if (typeof detail === "string") return { message: detail, type: "error" };
      if (Array.isArray(detail)) {
        return {
          message: detail.map((d) => (d && d.msg ? `${(d.loc || []).slice(1).join(".")} ${d.msg}`.trim() : String(d))).join("; "),
          type: "validation_error",
        };
      }
      return { message: JSON.stringify(detail), type: "error" };
    }
    if (typeof body.message === "string") return { message: body.message, type: body.type };
    return null;
  }

  async function errorFromResponse(response) {
    let described = null;
    try {
      const text = await response.text();
      try {
        described = describeErrorBody(JSON.parse(text));
      } catch (_) {
        if (text && text.length < 300) described = { message: text.trim(), type: "error" };
      }
    } catch (_) {
      /* body unreadable */
    }
    const message = (described && described.message) || `${response.status} ${response.statusText || "error"}`.trim();
    if (response.status === 401) {
      askForApiKey(state.apiKey ? `The API key was rejected: ${message}` : `This server needs an API key: ${message}`);
    }
    return new ApiError(message, response.status, described && described.type);
  }

  /** fetch() with the API key, turning non-2xx answers into ApiError (with the server's message). */
  async function api(path, options = {}) {
    const headers = new Headers(options.headers || {});
    if (!headers.has("Accept")) headers.set("Accept", "application/json");
    if (state.apiKey) headers.set("Authorization", `Bearer ${state.apiKey}`);
    let response;
    try {
      response = await fetch(path, { ...options, headers });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new ApiError("Cannot reach the server. Is it running?", 0, "network_error");
    }
    if (!response.ok) throw await errorFromResponse(response);
    return response;
  }

  async function readJson(response) {
    const text = await response.text();
    if (!text) return {};
    try {
      return JSON.parse(text);
    } catch (_) {
      throw new ApiError("The server sent a response that is not JSON.", response.status, "bad_response");
    }
  }

  // ---------------------------------------------------------------- server-sent events over fetch()

  /** An incremental SSE parser (the text/event-stream format): push() decoded text, end() at the end. */
  function createSseParser(onEvent) {
    let buffer = "";
    let eventName = "";
    let dataLines = [];

    function dispatch() {
      if (dataLines.length) onEvent(eventName || "message", dataLines.join("\n"));
      eventName = "";
      dataLines = [];
    }

    function processLine(line) {
      if (line === "") return dispatch();
      if (line.startsWith(":")) return undefined; // comment / keep-alive
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") eventName = value;
      else if (field === "data") dataLines.push(value);
      return undefined;
    }

    return {
      push(text) {
        buffer += text;
        let start = 0;
        for (let i = 0; i < buffer.length; i += 1) {
          const c = buffer[i];
          if (c !== "\n" && c !== "\r") continue;
          if (c === "\r" && i + 1 === buffer.length) break; // a CR at the end may be half of a CRLF
          processLine(buffer.slice(start, i));
          if (c === "\r" && buffer[i + 1] === "\n") i += 1;
          start = i + 1;
        }
        buffer = buffer.slice(start);
      },
      end() {
        if (buffer) processLine(buffer.replace(/\r$/, ""));
        buffer = "";
        dispatch();
      },
    };
  }

  // ---------------------------------------------------------------- conversation view

  function isNearBottom() {
    const m = el.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  function scrollToBottom(force) {
    if (force || isNearBottom()) el.messages.scrollTop = el.messages.scrollHeight;
  }

  function addUserMessage(text) {
    el.emptyState.hidden = true;
    const node = h("article", { className: "message user", "aria-label": "You" },
      h("div", { className: "bubble", lang: langOf(text), text }));
    el.messages.append(node);
    scrollToBottom(true);
  }

  /** An assistant message being streamed: returns an object that updates it. */
  function addAssistantMessage() {
    const badge = h("span", { className: "badge not-grounded", hidden: true, title: "No passage in the documents supports an answer" },
      "Not in sources", h("span", { lang: "zh-Hans" }, " · 资料中未找到"));
    const weak = h("span", { className: "badge weak-evidence", hidden: true,
      title: "The answer model's confidence is below one half: the quotes more likely miss the asked fact than hold it" });
    const weakNote = h("p", { className: "weak-note", hidden: true },
      "These quotes may not answer this exact question; read them before relying on the answer.",
      h("span", { lang: "zh-Hans" }, " 这些引文未必回答了这个问题,请先核对。"));
    const answer = h("div", { className: "answer" });
    const thinking = h("p", { className: "thinking" }, "Searching the documents", h("span", { className: "dots", "aria-hidden": "true" }));
    const sources = h("ol", { className: "sources", hidden: true, "aria-label": "Sources" });
    const error = h("p", { className: "error", role: "alert", hidden: true });
    const root = h("article", { className: "message assistant streaming", "aria-busy": "true", "aria-label": "Assistant" },
      h("header", { className: "message-meta" }, h("span", { className: "role" }, "Assistant"), badge, weak),
      thinking, answer, weakNote, sources, error);
    root.dataset.tokens = "0";
    el.messages.append(root);
    scrollToBottom(true);

    const view = {
      root,
      text: "",
      citations: null, // Map marker -> citation, once known
      tokens: 0,
      renderPending: false,
      appendToken(piece) {
        view.tokens += 1;
        root.dataset.tokens = String(view.tokens);
        view.text += piece;
        view.scheduleRender();
      },
      scheduleRender() {
        if (view.renderPending) return;
        view.renderPending = true;
        requestAnimationFrame(() => {
          view.renderPending = false;
          view.render();
        });
      },
      render() {
        const stick = isNearBottom();
        thinking.hidden = view.text.length > 0 || !root.classList.contains("streaming");
        answer.lang = langOf(view.text);
        renderAnswerText(answer, view.text, view.citations);
        if (stick) scrollToBottom(true);
      },
      setCitations(list) {
        view.citations = new Map();
        for (const c of Array.isArray(list) ? list : []) {
          if (c && c.marker !== undefined) view.citations.set(Number(c.marker), c);
        }
        renderSources(sources, view.citations);
        view.render();
      },
      setGrounded(grounded) {
        badge.hidden = grounded !== false;
        root.classList.toggle("ungrounded", grounded === false);
      },
      setEvidence(isWeak, confidence) {
        const shown = isWeak === true;
        weak.hidden = !shown;
        weakNote.hidden = !shown;
        root.classList.toggle("weak", shown);
        if (shown) {
          const share = typeof confidence === "number" ? ` ${Math.round(confidence * 100)}%` : "";
          weak.replaceChildren(`Weak evidence${share}`, h("span", { lang: "zh-Hans" }, " · 证据较弱"));
        }
      },
      finish(finalText) {
        if (typeof finalText === "string") view.text = finalText;
        root.classList.remove("streaming");
        root.setAttribute("aria-busy", "false");
        root.dataset.state = "done";
        view.render();
      },
      fail(message) {
        root.classList.remove("streaming");
        root.setAttribute("aria-busy", "false");
        root.dataset.state = "error";
        error.textContent = message;
        error.hidden = false;
        view.render();
        if (!view.text) answer.hidden = true;
      },
    };
    return view;
  }

  /** Answer text as paragraphs, with [n] markers turned into buttons that open the citation (text nodes only).
   * Blank lines separate paragraphs; other line breaks (hard-wrapped source text) become spaces, except before
   * list items ("- x", "1. x", "(b) x"), which start on a new line. */
  function renderAnswerText(container, text, citations) {
    const fragment = document.createDocumentFragment();
    const paragraphs = text.split(/\n[ \t]*\n\s*/);
    for (const paragraph of paragraphs) {
      if (!paragraph.trim() && paragraphs.length > 1) continue;
      const p = document.createElement("p");
      paragraph.split("\n").forEach((line, i) => {
        if (i > 0) p.append(LIST_ITEM_RE.test(line) ? document.createElement("br") : " ");
        appendWithMarkers(p, line, citations);
      });
      fragment.append(p);
    }
    container.replaceChildren(fragment);
  }

  function appendWithMarkers(parent, text, citations) {
    let last = 0;
    for (const match of text.matchAll(MARKER_RE)) {
      parent.append(text.slice(last, match.index));
      const markers = match[1].split(/\s*[,，]\s*/).map(Number);
      for (const marker of markers) {
        const citation = citations && citations.get(marker);
        if (citation) parent.append(citeButton(citation, "cite", citations));
        else parent.append(h("span", { className: "cite-pending", title: citations ? "No verified quote for this marker" : "Loading source…" }, String(marker)));
      }
      last = match.index + match[0].length;
    }
    parent.append(text.slice(last));
  }

  function citeButton(citation, className, citations) {
    const label = `Source ${citation.marker}: ${citation.title || citation.document}${citation.page ? `, page ${citation.page}` : ""}`;
    return h("button", {
      type: "button",
      className,
      dataset: { marker: String(citation.marker), document: citation.document || "" },
      "aria-label": label,
      "aria-haspopup": "dialog",
      "aria-controls": "citation-panel",
      "aria-expanded": "false",
      title: label,
      onClick: (event) => openCitation(citation, event.currentTarget, citations),
    }, className === "cite" ? String(citation.marker) : `[${citation.marker}]`);
  }

  function renderSources(list, citations) {
    list.replaceChildren();
    const sorted = [...citations.values()].sort((a, b) => Number(a.marker) - Number(b.marker));
    for (const c of sorted) {
      const button = citeButton(c, "source-link", citations);
      const title = h("span", { className: "source-title", lang: langOf(c.title) }, c.title || c.document);
      const page = c.page ? h("span", { className: "source-page" }, ` · p. ${c.page}`) : null;
      button.append(" ", title, page || "");
      list.append(h("li", null, button));
    }
    list.hidden = sorted.length === 0;
  }

  // ---------------------------------------------------------------- citation panel

  /** A link target only when it is a web address (an uploaded file's front matter could say "javascript:..."). */
  function safeHref(url, sameOrigin) {
    if (typeof url !== "string" || !url) return null;
    try {
      const parsed = new URL(url, window.location.href);
      if (sameOrigin ? parsed.origin !== window.location.origin : !/^https?:$/.test(parsed.protocol)) return null;
      return parsed.href;
    } catch (_) {
      return null;
    }
  }

  function setLink(link, url, sameOrigin) {
    const href = safeHref(url, sameOrigin);
    link.hidden = !href;
    if (href) link.href = href;
    else link.removeAttribute("href");
  }

  function fillCitation(citation) {
    el.panelMarker.textContent = `[${citation.marker}]`;
    el.panelTitle.textContent = citation.title || citation.document || "Untitled document";
    el.panelTitle.lang = langOf(citation.title);
    el.panelDocument.textContent = citation.document || "—";
    el.panelPage.textContent = citation.page ? String(citation.page) : "—";
    el.panelSection.textContent = citation.heading || "";
    el.panelSection.lang = langOf(citation.heading);
    for (const node of el.panel.querySelectorAll(".citation-section")) node.hidden = !citation.heading;
    el.panelQuote.textContent = citation.quote || "";
    el.panelQuote.lang = langOf(citation.quote);
    el.panelTranslationText.textContent = citation.translation || "";
    el.panelTranslationText.lang = langOf(citation.translation);
    el.panelTranslation.hidden = !citation.translation;
    setLink(el.panelFile, citation.file_url, true);
    el.panelFile.textContent = citation.page && /#page=\d+$/.test(citation.file_url || "")
      ? `Stored PDF, page ${citation.page}` : "Stored file";
    setLink(el.panelUrl, citation.url, false);
    el.panelShow.hidden = !(citation.document && citation.end > citation.start);
  }

  /** The distinct spans that an answer cites from ``citation``'s document, in text order, each with its citations. */
  function citedSpans(citation, citations) {
    const spans = new Map();
    for (const c of citations ? citations.values() : [citation]) {
      if (c.document !== citation.document || !(c.end > c.start)) continue;
      const key = `${c.start}-${c.end}`;
      if (!spans.has(key)) spans.set(key, { start: c.start, end: c.end, citations: [] });
      spans.get(key).citations.push(c);
    }
    const sorted = [...spans.values()].sort((a, b) => a.start - b.start || a.end - b.end);
    return sorted.length <= MAX_VIEW_SPANS ? sorted : sorted.filter((s) => s.citations.includes(citation));
  }

  function openCitation(citation, trigger, citations) {
    if (state.panelTrigger && state.panelTrigger !== trigger) state.panelTrigger.setAttribute("aria-expanded", "false");
    const viewWasOpen = !el.view.hidden;
    fillCitation(citation);
    state.viewSpans = citedSpans(citation, citations);
    state.viewFocus = Math.max(0, state.viewSpans.findIndex((s) => s.citations.includes(citation)));
    state.viewData = null;
    state.viewTicket += 1;
    if (viewWasOpen) showInDocument({ focus: state.viewFocus });
    else hideDocumentView();
    el.panel.hidden = false;
    el.panel.classList.add("open");
    state.panelTrigger = trigger || null;
    if (trigger) trigger.setAttribute("aria-expanded", "true");
    el.panel.focus({ preventScroll: true });
  }

  // ---------------------------------------------------------------- document view

  function hideDocumentView() {
    el.view.hidden = true;
    el.panel.classList.remove("expanded");
    el.panelShow.setAttribute("aria-expanded", "false");
    el.viewText.replaceChildren();
    setStatus(el.viewStatus, "");
  }

  /** Fetch and draw the view: centred on span ``focus``, or part ``part`` of the document (paging). */
  async function showInDocument({ focus, part }) {
    const spans = state.viewSpans;
    if (!spans.length) return;
    const documentId = spans[0].citations[0].document;
    const params = new URLSearchParams();
    for (const s of spans) params.append("span", `${s.start}-${s.end}`);
    if (part !== undefined && part !== null) params.set("part", String(part));
    else params.set("focus", String(focus));
    if (focus !== undefined) state.viewFocus = focus;
    const ticket = ++state.viewTicket;
    el.view.hidden = false;
    el.panel.classList.add("expanded");
    el.panelShow.setAttribute("aria-expanded", "true");
    el.view.setAttribute("aria-busy", "true");
    setStatus(el.viewStatus, "Loading the document…", "busy");
    try {
      const view = await readJson(await api(`/documents/${encodeURIComponent(documentId)}/view?${params}`));
      if (ticket !== state.viewTicket) return; // a newer request (another citation, another page) won
      state.viewData = view;
      renderDocumentView(view);
      setStatus(el.viewStatus, "");
    } catch (err) {
      if (ticket === state.viewTicket) setStatus(el.viewStatus, `Could not load the document: ${err.message}`, "error");
    } finally {
      if (ticket === state.viewTicket) el.view.setAttribute("aria-busy", "false");
    }
  }

  /** The view's text with every cited span in a <mark> (text nodes only). Offsets are code points, as the server's. */
  function renderDocumentView(view) {
    const chars = Array.from(view.text || "");
    const marks = (view.spans || []).filter((s) => s.view_start !== null && s.view_end !== null);
    const pageStarts = new Map((view.pages || []).filter((p) => p.start > 0 || view.start > 0 || p.page > 1)
      .map((p) => [p.start, p.page]));
    const cuts = new Set([0, chars.length, ...pageStarts.keys()]);
    for (const s of marks) cuts.add(s.view_start).add(s.view_end);
    const bounds = [...cuts].filter((c) => c >= 0 && c <= chars.length).sort((a, b) => a - b);
    const fragment = document.createDocumentFragment();
    for (let i = 0; i < bounds.length - 1; i += 1) {
      const [from, to] = [bounds[i], bounds[i + 1]];
      if (pageStarts.has(from)) {
        const page = pageStarts.get(from);
        fragment.append(h("span", { className: "page-break", role: "separator", "aria-label": `Page ${page}`, dataset: { page: String(page) } }));
      }
      const text = chars.slice(from, to).join("");
      const covering = marks.filter((s) => s.view_start <= from && to <= s.view_end).map((s) => s.index);
      if (!covering.length) {
        fragment.append(text);
        continue;
      }
      const mark = h("mark", { dataset: { spans: covering.join(" ") } }, text);
      if (covering.includes(state.viewFocus)) mark.classList.add("current");
      fragment.append(mark);
    }
    el.viewText.replaceChildren(fragment);
    el.viewText.lang = view.language === "zh" ? "zh-Hans" : (view.language || langOf(view.text));

    const where = [];
    if (view.heading) where.push(`§ ${view.heading}`);
    const pages = (view.pages || []).map((p) => p.page);
    if (pages.length) where.push(pages.length > 1 ? `pages ${pages[0]}–${pages[pages.length - 1]}` : `page ${pages[0]}`);
    where.push(`characters ${formatCount(view.start)}–${formatCount(view.end)} of ${formatCount(view.length)}`);
    el.viewLocation.textContent = where.join(" · ");
    el.viewLocation.lang = langOf(view.heading);
    el.viewEarlier.disabled = view.previous === null || view.previous === undefined;
    el.viewLater.disabled = view.next === null || view.next === undefined;
    updateQuoteSteps();

    const focused = (view.spans || [])[state.viewFocus];
    const expected = state.viewSpans[state.viewFocus];
    if (focused && expected && !expected.citations.some((c) => c.quote === focused.quote)) {
      setStatus(el.viewStatus, "The document has changed since this answer: the marked text may differ from the quote.", "error");
    }
    scrollToCurrent();
  }

  function updateQuoteSteps() {
    const total = state.viewSpans.length;
    el.viewCount.textContent = `Quote ${state.viewFocus + 1} of ${total} · 引文 ${state.viewFocus + 1}/${total}`;
    el.viewPrevQuote.disabled = total < 2;
    el.viewNextQuote.disabled = total < 2;
  }

  function scrollToCurrent() {
    const current = el.viewText.querySelector("mark.current");
    if (!current) {
      el.viewText.scrollTop = 0;
      return;
    }
    // Centre it in the text box itself, then let the panel move only as far as needed to show it.
    const box = el.viewText.getBoundingClientRect();
    const mark = current.getBoundingClientRect();
    el.viewText.scrollTop += mark.top - box.top - Math.max(0, (box.height - mark.height) / 2);
    current.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  /** Step to the previous / next cited span of this document: redraw the marks if it is in view, else fetch it. */
  function stepQuote(delta) {
    const total = state.viewSpans.length;
    if (total < 2) return;
    const focus = (state.viewFocus + delta + total) % total;
    fillCitation(state.viewSpans[focus].citations[0]);
    const span = state.viewData && state.viewData.spans[focus];
    if (span && span.view_start !== null && span.view_start !== undefined) {
      state.viewFocus = focus;
      for (const mark of el.viewText.querySelectorAll("mark")) {
        mark.classList.toggle("current", mark.dataset.spans.split(" ").includes(String(focus)));
      }
      updateQuoteSteps();
      scrollToCurrent();
    } else {
      showInDocument({ focus });
    }
  }

  function closeCitation() {
    if (el.panel.hidden) return;
    state.viewTicket += 1;
    hideDocumentView();
    el.panel.hidden = true;
    el.panel.classList.remove("open");
    const trigger = state.panelTrigger;
    state.panelTrigger = null;
    if (trigger) {
      trigger.setAttribute("aria-expanded", "false");
      if (document.contains(trigger)) trigger.focus({ preventScroll: true });
    }
  }

  // ---------------------------------------------------------------- chat

  function setStreaming(on) {
    state.streaming = on;
    el.send.disabled = on;
    el.send.textContent = on ? "Answering…" : "Send";
    el.stop.hidden = !on;
    el.form.setAttribute("aria-busy", on ? "true" : "false");
  }

  async function sendMessage(text) {
    setStreaming(true);
    addUserMessage(text);
    const view = addAssistantMessage();
    const controller = new AbortController();
    state.controller = controller;
    let finished = false;

    const handleEvent = (name, raw) => {
      let data;
      try {
        data = JSON.parse(raw);
      } catch (_) {
        data = { text: raw };
      }
      if (name === "token" || name === "message") {
        if (typeof data.text === "string") view.appendToken(data.text);
      } else if (name === "citations") {
        if (data.conversation_id) state.conversationId = data.conversation_id;
        view.setCitations(data.citations);
        if (typeof data.grounded === "boolean") view.setGrounded(data.grounded);
      } else if (name === "done") {
        if (data.conversation_id) state.conversationId = data.conversation_id;
        if (Array.isArray(data.citations) && !view.citations) view.setCitations(data.citations);
        if (typeof data.grounded === "boolean") view.setGrounded(data.grounded);
        view.setEvidence(data.weak_evidence, data.confidence);
        view.finish(typeof data.answer === "string" ? data.answer : undefined);
        finished = true;
      } else if (name === "error") {
        const described = describeErrorBody(data) || { message: raw };
        view.fail(described.message);
        finished = true;
      }
    };

    try {
      const body = { message: text, stream: true };
      if (state.conversationId) body.conversation_id = state.conversationId;
      const response = await api("/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      const type = response.headers.get("content-type") || "";
      if (!type.includes("text/event-stream") || !response.body) {
        // A server that answers with plain JSON: {conversation_id, answer, grounded, citations, weak_evidence, ...}.
        const json = await readJson(response);
        handleEvent("citations", JSON.stringify({ citations: json.citations || [], grounded: json.grounded, conversation_id: json.conversation_id }));
        handleEvent("done", JSON.stringify(json));
      } else {
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        const parser = createSseParser(handleEvent);
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.push(decoder.decode(value, { stream: true }));
        }
        parser.push(decoder.decode());
        parser.end();
      }
      if (!finished) {
        if (view.text) view.finish();
        else view.fail("The answer stream ended before an answer arrived. Please try again.");
      }
    } catch (err) {
      if (err && err.name === "AbortError") {
        view.fail(view.text ? "Stopped." : "Stopped before an answer arrived.");
      } else {
        const message = (err && err.message) || String(err);
        view.fail(message);
        if (err instanceof ApiError && (err.status === 404 || /conversation/i.test(err.type || "")) && /conversation/i.test(message)) {
          state.conversationId = null; // the server forgot it: the next question starts a new conversation
        }
      }
    } finally {
      state.controller = null;
      setStreaming(false);
      el.input.focus();
    }
  }

  function newConversation() {
    if (state.controller) state.controller.abort();
    state.conversationId = null;
    closeCitation();
    for (const node of [...el.messages.children]) {
      if (node !== el.emptyState) node.remove();
    }
    el.emptyState.hidden = false;
    el.input.value = "";
    autoGrow();
    el.input.focus();
  }

  function autoGrow() {
    el.input.style.height = "auto";
    el.input.style.height = `${Math.min(el.input.scrollHeight + 2, 220)}px`;
  }

  // ---------------------------------------------------------------- documents

  function setStatus(node, message, kind) {
    node.textContent = message || "";
    node.dataset.kind = kind || "";
  }

  async function loadDocuments() {
    try {
      const json = await readJson(await api("/documents"));
      renderDocuments(Array.isArray(json.documents) ? json.documents : []);
      setStatus(el.docStatus, "");
    } catch (err) {
      setStatus(el.docStatus, `Could not load documents: ${err.message}`, "error");
    }
  }

  function renderDocuments(documents) {
    el.docHeading.replaceChildren("Documents ", h("span", { lang: "zh-Hans", className: "muted" }, "文档"),
      h("span", { className: "count" }, ` ${formatCount(documents.length)}`));
    if (!documents.length) {
      el.docList.replaceChildren(h("li", { className: "document empty" }, "No documents indexed yet."));
      return;
    }
    const items = documents.map((doc) => {
      const title = doc.title || doc.id;
      const language = (doc.language || "").toString();
      const meta = h("p", { className: "doc-meta" },
        language ? h("span", { className: "lang-tag", title: "Language" }, language.toUpperCase()) : "",
        h("span", null, plural(doc.passages, "passage")));
      return h("li", { className: "document", dataset: { id: doc.id || "" } },
        h("div", { className: "doc-main" },
          h("p", { className: "doc-title", lang: langOf(title), title }, title),
          meta,
          h("p", { className: "doc-id mono", title: doc.id }, doc.id || "")),
        h("button", {
          type: "button",
          className: "ghost danger small delete-document",
          "aria-label": `Delete ${title}`,
          onClick: () => deleteDocument(doc),
        }, "Delete"));
    });
    el.docList.replaceChildren(...items);
  }

  async function deleteDocument(doc) {
    const title = doc.title || doc.id;
    if (!window.confirm(`Delete “${title}” from the corpus and the index?\n\n${doc.id}`)) return;
    setStatus(el.docStatus, `Deleting “${title}”…`, "busy");
    try {
      await api(`/documents/${encodeURIComponent(doc.id)}`, { method: "DELETE" });
      setStatus(el.docStatus, `Deleted “${title}”.`, "success");
    } catch (err) {
      setStatus(el.docStatus, `Could not delete “${title}”: ${err.message}`, "error");
      return;
    }
    await loadDocuments();
    setStatus(el.docStatus, `Deleted “${title}”.`, "success");
    loadHealth();
  }

  /** A one-line summary of what POST /documents answered: {status, document, sync} (or a bare sync report). */
  function describeUpload(json, fileName) {
    if (!json || typeof json !== "object") return `Uploaded ${fileName}.`;
    const doc = json.document && typeof json.document === "object" ? json.document : (json.id ? json : null);
    const report = json.sync && typeof json.sync === "object" ? json.sync : json;
    const parts = [];
    if (json.status === "unchanged") {
      parts.push(json.message || `${fileName} is already indexed with exactly this content.`);
    } else if (doc) {
      const verb = json.status === "updated" ? "Updated" : "Indexed";
      let line = `${verb} “${doc.title || doc.id}”`;
      if (typeof doc.passages === "number") line += ` — ${plural(doc.passages, "passage")}`;
      parts.push(`${line}.`);
    } else {
      const counts = ["added", "updated", "removed"]
        .filter((k) => Array.isArray(report[k]) && report[k].length)
        .map((k) => `${k} ${report[k].length}`);
      parts.push(counts.length ? `Uploaded ${fileName}: ${counts.join(", ")}.` : `Uploaded ${fileName}.`);
    }
    if (Array.isArray(report.failed) && report.failed.length) {
      parts.push(`Not indexed: ${report.failed.map((f) => `${f.document}: ${f.reason}`).join("; ")}.`);
    }
    return parts.join(" ");
  }

  async function uploadDocument(event) {
    event.preventDefault();
    const file = el.uploadInput.files && el.uploadInput.files[0];
    if (!file) {
      setStatus(el.uploadStatus, "Choose a file first.", "error");
      el.uploadInput.focus();
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name);
    el.uploadButton.disabled = true;
    el.uploadForm.setAttribute("aria-busy", "true");
    setStatus(el.uploadStatus, `Uploading and indexing ${file.name}…`, "busy");
    try {
      const json = await readJson(await api("/documents", { method: "POST", body: form }));
      setStatus(el.uploadStatus, describeUpload(json, file.name), "success");
      el.uploadInput.value = "";
      await loadDocuments();
      loadHealth();
    } catch (err) {
      setStatus(el.uploadStatus, `Upload failed: ${err.message}`, "error");
    } finally {
      el.uploadButton.disabled = false;
      el.uploadForm.setAttribute("aria-busy", "false");
    }
  }

  // ---------------------------------------------------------------- health

  async function loadHealth() {
    clearTimeout(state.healthTimer);
    let next = 30000;
    try {
      const json = await readJson(await api("/health"));
      el.healthText.replaceChildren(plural(json.passages, "passage"),
        h("span", { className: "health-documents" }, ` · ${plural(json.documents, "document")}`));
      if (json.model_loaded === false) {
        el.healthText.append(" · model loading");
        next = 5000;
      }
      el.health.dataset.state = json.status === "ok" ? "ok" : "warn";
      el.health.title = [`status: ${json.status ?? "?"}`, json.corpus_revision ? `corpus revision: ${json.corpus_revision}` : ""]
        .filter(Boolean).join("\n");
    } catch (err) {
      el.healthText.textContent = err.status === 401 ? "API key needed" : "Server unreachable";
      el.health.dataset.state = "error";
      el.health.title = err.message;
      next = 15000;
    }
    state.healthTimer = setTimeout(loadHealth, next);
  }

  // ---------------------------------------------------------------- API key

  function askForApiKey(reason) {
    el.keyReason.textContent = reason || "This server may require an API key. It is stored in this browser only.";
    el.keyInput.value = state.apiKey;
    if (!el.keyDialog.open) {
      if (typeof el.keyDialog.showModal === "function") el.keyDialog.showModal();
      else el.keyDialog.setAttribute("open", "");
    }
    el.keyInput.focus();
  }

  function closeKeyDialog() {
    if (typeof el.keyDialog.close === "function") el.keyDialog.close();
    else el.keyDialog.removeAttribute("open");
  }

  function refreshAll() {
    loadHealth();
    loadDocuments();
  }

  // ---------------------------------------------------------------- wiring

  el.form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (state.streaming) return;
    const text = el.input.value.trim();
    if (!text) return;
    el.input.value = "";
    autoGrow();
    closeCitation();
    sendMessage(text);
  });

  el.input.addEventListener("keydown", (event) => {
    // Enter sends; Shift+Enter is a newline; never send while an IME (e.g. Chinese pinyin) is composing.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      if (!state.streaming) el.form.requestSubmit();
    }
  });
  el.input.addEventListener("input", autoGrow);
  el.stop.addEventListener("click", () => state.controller && state.controller.abort());
  el.newConversation.addEventListener("click", newConversation);

  el.panelClose.addEventListener("click", closeCitation);
  el.panelShow.addEventListener("click", () => {
    if (el.view.hidden) showInDocument({ focus: state.viewFocus });
    else hideDocumentView();
  });
  el.viewPrevQuote.addEventListener("click", () => stepQuote(-1));
  el.viewNextQuote.addEventListener("click", () => stepQuote(1));
  el.viewEarlier.addEventListener("click", () => state.viewData && showInDocument({ part: state.viewData.previous }));
  el.viewLater.addEventListener("click", () => state.viewData && showInDocument({ part: state.viewData.next }));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !el.panel.hidden && !el.keyDialog.open) closeCitation();
  });
  document.addEventListener("click", (event) => {
    if (el.panel.hidden) return;
    const target = event.target;
    if (el.panel.contains(target) || (target.closest && target.closest(".cite, .source-link"))) return;
    closeCitation();
  });

  el.uploadForm.addEventListener("submit", uploadDocument);
  el.refreshDocs.addEventListener("click", refreshAll);

  el.keyButton.addEventListener("click", () => askForApiKey());
  el.keyCancel.addEventListener("click", closeKeyDialog);
  el.keyClear.addEventListener("click", () => {
    storeKey("");
    closeKeyDialog();
    refreshAll();
  });
  el.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    storeKey(el.keyInput.value.trim());
    closeKeyDialog();
    refreshAll();
  });

  updateKeyButton();
  refreshAll();
  autoGrow();

  // For tests and debugging: the parts that are pure functions.
  window.pensionAssistant = Object.freeze({ createSseParser, describeErrorBody, state });
})();
