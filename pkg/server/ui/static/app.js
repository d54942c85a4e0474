'use strict';
// The page of `chatctl serve` (docs/SERVER.md, "The page"). State and
// lifecycle events come from /ui/api/events (server-sent events); actions
// POST to /ui/api/{kick,import,delete}. Every value from the server is put
// in the page as text (textContent), never as HTML: user IDs are whatever
// clients sent.

const MAX_FEED = 200; // the server keeps as many

// shown is a user ID as the page shows it: written as Go's strconv.Quote
// writes it between its quotes, as the server's logs do (logField): what
// strconv.IsPrint refuses (format and control characters; letters, marks,
// numbers, punctuation, symbols and the ASCII space pass) becomes \uXXXX,
// \UXXXXXXXX or \xXX, and \ and " are escaped, so that
// "administrator\u200b", a right-to-left override or an ID typed with a
// literal backslash cannot pass for another name. Actions still send the
// ID itself. testdata/shown.json holds it equal to Go's.
function shown(id) {
  const short = { '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v', '\\': '\\\\', '"': '\\"' };
  return id.replace(/[\\"]|[^\p{L}\p{M}\p{N}\p{P}\p{S} ]/gu, (c) => {
    if (short[c]) return short[c];
    const cp = c.codePointAt(0);
    const hex = cp.toString(16);
    if (cp < 0x80) return `\\x${hex.padStart(2, '0')}`;
    return cp > 0xffff ? `\\U${hex.padStart(8, '0')}` : `\\u${hex.padStart(4, '0')}`;
  });
}

function el(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const kid of kids) e.append(kid);
  return e;
}

function fmtTime(t) {
  const d = new Date(t);
  return isNaN(d) ? '' : d.toLocaleTimeString();
}

// updateMode says whether actions can be sent: only with the admin's
// UserSig, which stays in this tab's memory.
function updateMode() {
  const given = document.getElementById('usersig').value.trim() !== '';
  document.getElementById('mode').textContent = given ? 'actions on (admin UserSig)' : 'read-only';
}

function renderState(st) {
  updateMode();

  const apps = document.querySelector('#apps tbody');
  apps.replaceChildren(...st.apps.map((a) =>
    el('tr', { 'data-app': String(a.sdkappid) },
      el('td', { class: 'mono', textContent: String(a.sdkappid) }),
      el('td', { textContent: a.admins.join(', ') }),
      el('td', { textContent: String(a.web_instances) }),
      el('td', { textContent: a.multi_device }))));
  document.getElementById('timing').textContent =
    `hello interval ${st.hello_interval}, heartbeat timeout ${st.heartbeat_timeout}`;

  const sel = document.getElementById('acct-app');
  const chosen = sel.value;
  sel.replaceChildren(...st.apps.map((a) => el('option', { value: String(a.sdkappid), textContent: String(a.sdkappid) })));
  if (chosen) sel.value = chosen;

  const users = document.querySelector('#users tbody');
  users.replaceChildren(...st.users.map((u) => {
    const kick = el('button', { class: 'danger kick', textContent: 'Kick', title: 'REST kick: every instance gets KICKED_OUT REST_API_Kick' });
    kick.addEventListener('click', () => act('kick', u.sdkappid, u.user));
    return el('tr', { 'data-user': u.user, 'data-app': String(u.sdkappid) },
      el('td', { class: 'mono', textContent: String(u.sdkappid) }),
      el('td', { class: 'user', textContent: shown(u.user) }),
      el('td', {}, ...u.instances.map((i) => {
        const end = el('button', { class: 'end', textContent: '×', title: 'end this instance alone: KICKED_OUT REST_API_Kick' });
        end.addEventListener('click', () => act('end', u.sdkappid, u.user, { inst: i.inst }));
        return el('span', {
          class: `inst ${i.status}`,
          'data-platform': i.platform,
          'data-inst': String(i.inst),
          title: `logged in ${fmtTime(i.login_at)}, UserSig valid until ${new Date(i.expires).toLocaleString()}`,
        }, `${i.platform} #${i.inst}${i.status === 'online' ? '' : ' (detached)'} `, end);
      })),
      el('td', {}, kick));
  }));
  document.getElementById('nousers').hidden = st.users.length > 0;
  document.getElementById('count').textContent =
    st.users_total > st.users.length ? `(${st.users.length} of ${st.users_total} shown)` : `(${st.users_total})`;
}

function describe(e) {
  const who = e.user ? shown(e.user) : '(unknown user)';
  const inst = e.inst ? ` #${e.inst}` : '';
  const plat = e.platform ? ` on ${e.platform}` : '';
  switch (e.kind) {
    case 'login': return `login ${who}${inst}${plat} (${e.form})`;
    case 'logout': return `logout ${who}${inst}${plat}`;
    case 'kick': return `kick ${who}${inst}${plat}: ${e.kick_type}${e.by ? ` by #${e.by}` : ''}`;
    case 'expired': return `expired ${who}${inst}${plat}: UserSig ran out`;
    case 'refused': return `refused ${who}: ${e.code} ${e.reason || ''}`;
    default: return `${e.kind} ${who}`;
  }
}

function addEvent(e) {
  const feed = document.getElementById('feed');
  const li = el('li', { class: `k-${e.kind}`, 'data-kind': e.kind, value: e.seq },
    el('span', { class: 'muted', textContent: `${fmtTime(e.time)} ` }), describe(e));
  feed.prepend(li);
  while (feed.children.length > MAX_FEED) feed.lastElementChild.remove();
}

async function act(name, sdkappid, user, extra = {}) {
  const out = document.getElementById('result');
  const headers = { 'content-type': 'application/json' };
  const usersig = document.getElementById('usersig').value.trim();
  if (usersig) headers.authorization = `Bearer ${usersig}`;
  out.className = 'muted';
  const what = `${name} ${user}${extra.inst ? ` #${extra.inst}` : ''}`;
  out.textContent = `${what}…`;
  try {
    const res = await fetch(`api/${name}`, { method: 'POST', headers, body: JSON.stringify({ sdkappid: Number(sdkappid), user, ...extra }) });
    const body = await res.json();
    let failed = !res.ok || body.ActionStatus !== 'OK';
    let text = body.error || `${body.ActionStatus} ${body.ErrorCode}${body.ErrorInfo ? ' ' + body.ErrorInfo : ''}`;
    for (const it of body.ResultItem || []) {
      if (it.ResultCode) { failed = true; text = `${it.UserID}: ${it.ResultCode} ${it.ResultInfo}`; }
    }
    out.className = failed ? 'err' : '';
    out.textContent = `${what}: ${text}`;
  } catch (err) {
    out.className = 'err';
    out.textContent = `${what}: ${err}`;
  }
}

document.getElementById('account').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = ev.submitter ? ev.submitter.dataset.action : 'import';
  act(name, document.getElementById('acct-app').value, document.getElementById('acct-user').value);
});

function connect() {
  const conn = document.getElementById('conn');
  const es = new EventSource('api/events');
  es.addEventListener('hello', (m) => {
    const st = JSON.parse(m.data);
    document.getElementById('feed').replaceChildren();
    for (const e of st.events || []) addEvent(e);
    renderState(st);
    conn.textContent = 'live';
    conn.className = 'badge on';
  });
  es.addEventListener('state', (m) => renderState(JSON.parse(m.data)));
  es.addEventListener('lifecycle', (m) => addEvent(JSON.parse(m.data)));
  // EventSource reconnects by itself (a dropped stream, a server restart);
  // each new stream starts with a full hello.
  es.onerror = () => {
    conn.textContent = 'reconnecting…';
    conn.className = 'badge off';
  };
}
connect();

document.getElementById('usersig').addEventListener('input', updateMode);
