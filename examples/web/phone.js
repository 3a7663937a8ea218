// The Beckon web phone: log in, call user ids, watch each invitee's state,
// answer incoming calls. Plain DOM over the web client (/beckon.js); every
// text the server or another user sends is set with textContent, never as
// HTML.

import { Client, BeckonError } from '/beckon.js';

const $ = (testid, root = document) => root.querySelector(`[data-testid="${testid}"]`);

/** States an invitee never leaves (OFFLINE only when sent online-only). */
const FINAL = new Set(['ACCEPTED', 'REJECTED', 'CANCELLED', 'TIMEOUT']);
const STATE_TEXT = {
  INVITING: 'Inviting…',
  RECEIVED: 'Ringing',
  ACCEPTED: 'Accepted',
  REJECTED: 'Refused',
  CANCELLED: 'Cancelled',
  OFFLINE: 'Offline',
  TIMEOUT: 'No answer',
};
const CONNECTION_TEXT = {
  DISCONNECTED: 'Not connected',
  CONNECTING: 'Connecting…',
  CONNECTED: 'Connected',
  RECONNECTING: 'Reconnecting…',
};
const LOG_LIMIT = 300;

const page = {
  serverUrl: null,
  dev: false,
  deviceId: deviceIdOfThisTab(),
  /** @type {Client | null} */
  client: null,
  userId: null,
  /** invitationId -> { element, invitees: Map<userId, state>, deadline, ended, onlineOnly } */
  outgoing: new Map(),
  /** invitationId -> { element, deadline, ended } */
  incoming: new Map(),
  /** States that arrived before their send's result: invitationId -> [[userId, state]] */
  early: new Map(),
};

// ---- start ------------------------------------------------------------------

start();

async function start() {
  $('device-id').textContent = page.deviceId;
  $('login-form').addEventListener('submit', (e) => { e.preventDefault(); logIn(); });
  $('logout-button').addEventListener('click', () => logOut());
  $('call-form').addEventListener('submit', (e) => { e.preventDefault(); call(); });
  $('clear-log').addEventListener('click', () => { $('log').replaceChildren(); });
  const params = new URLSearchParams(location.search);
  const user = params.get('user') ?? sessionStorage.getItem('beckon.user');
  if (user) $('login-user').value = user;
  if (params.get('call')) $('call-invitees').value = params.get('call');
  setInterval(tick, 250);
  try {
    const response = await fetch('/config.json', { cache: 'no-store' });
    if (!response.ok) throw new Error(`/config.json: HTTP ${response.status}`);
    const config = await response.json();
    page.serverUrl = config.server_url;
    page.dev = config.dev === true;
  } catch (e) {
    showError(`Cannot read the page's configuration: ${e.message}`);
    return;
  }
  $('server-url').textContent = page.serverUrl;
  $('token-field').hidden = page.dev;
  $('dev-hint').hidden = !page.dev;
  $('login-button').disabled = false;
  log('page', `server ${page.serverUrl}${page.dev ? ' (development mode)' : ''}, device ${page.deviceId}`);
}

/** A device id for this tab: kept across reloads of the tab, new in a new tab. */
function deviceIdOfThisTab() {
  let id = sessionStorage.getItem('beckon.device');
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(6));
    id = 'web-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    sessionStorage.setItem('beckon.device', id);
  }
  return id;
}

// ---- login ------------------------------------------------------------------

async function logIn() {
  clearError();
  const userId = $('login-user').value.trim();
  const token = page.dev ? '' : $('login-token').value.trim();
  if (!userId) return showError('Type a user id.');
  if (page.client) await dropClient();
  const client = new Client({ serverUrl: page.serverUrl, deviceId: page.deviceId });
  page.client = client;
  client.addEventListener('event', (e) => onEvent(client, e.detail));
  setBusy('login-button', true);
  try {
    await client.login(userId, token);
  } catch (e) {
    if (page.client === client) await dropClient();
    return showError(e, 'Log in');
  } finally {
    setBusy('login-button', false);
  }
  page.userId = userId;
  sessionStorage.setItem('beckon.user', userId);
  log('you', `logged in as ${userId}`);
  showLoggedIn(true);
}

async function logOut() {
  clearError();
  const client = page.client;
  if (!client) return;
  try {
    await client.logout();
  } catch (e) {
    showError(e, 'Log out');
  }
  await dropClient();
  log('you', 'logged out');
}

async function dropClient() {
  const client = page.client;
  page.client = null;
  page.userId = null;
  showLoggedIn(false);
  for (const call of page.incoming.values()) endIncoming(call, 'Logged out');
  for (const call of page.outgoing.values()) endOutgoing(call, 'Logged out');
  if (client) {
    try { await client.close(); } catch { /* closing anyway */ }
  }
  showConnection('DISCONNECTED');
}

function showLoggedIn(yes) {
  $('login-user').disabled = yes;
  $('login-token').disabled = yes;
  $('login-button').hidden = yes;
  $('logout-button').hidden = !yes;
  $('call-button').disabled = !yes;
  const me = $('me');
  me.hidden = !yes;
  me.textContent = yes ? `Logged in as ${page.userId}. Others call you by this id.` : '';
}

// ---- calling ----------------------------------------------------------------

async function call() {
  clearError();
  const client = page.client;
  if (!client) return showError('Log in first.');
  const invitees = $('call-invitees').value.split(/[\s,]+/).filter(Boolean);
  if (invitees.length === 0) return showError('Type at least one user id to call.');
  const timeoutSeconds = Number($('call-timeout').value);
  const extendedData = $('call-data').value;
  const onlineOnly = $('call-online-only').checked;
  const options = { timeoutSeconds, onlineOnly };
  if (extendedData) options.extendedData = extendedData;
  setBusy('call-button', true);
  let result;
  try {
    result = await client.sendInvitation(invitees, options);
  } catch (e) {
    return showError(e, 'Call');
  } finally {
    setBusy('call-button', false);
  }
  const { invitationId, errorInvitees } = result;
  const offline = errorInvitees.map((i) => i.userId);
  log('you', `called ${unique(invitees).join(', ')}: invitation ${invitationId}` +
      (offline.length ? ` (offline: ${offline.join(', ')})` : ''));
  const callState = addOutgoing(invitationId, unique(invitees), timeoutSeconds, onlineOnly);
  for (const { userId, state } of errorInvitees) setInviteeState(callState, userId, state);
  for (const [userId, state] of page.early.get(invitationId) ?? []) setInviteeState(callState, userId, state);
  page.early.delete(invitationId);
}

function unique(list) {
  return [...new Set(list)];
}

function addOutgoing(invitationId, invitees, timeoutSeconds, onlineOnly) {
  const element = document.getElementById('outgoing-template').content.firstElementChild.cloneNode(true);
  element.dataset.invitationId = invitationId;
  $('call-id', element).textContent = invitationId;
  $('call-title', element).textContent = `Call to ${invitees.join(', ')}`;
  const call = {
    invitationId,
    element,
    invitees: new Map(),
    deadline: Date.now() + timeoutSeconds * 1000,
    ended: false,
    onlineOnly,
  };
  const rows = $('invitee-rows', element);
  for (const userId of invitees) {
    const row = document.createElement('tr');
    row.dataset.testid = 'invitee-row';
    row.dataset.user = userId;
    const name = document.createElement('td');
    name.textContent = userId;
    const state = document.createElement('td');
    state.dataset.testid = 'invitee-state';
    row.append(name, state);
    rows.append(row);
    call.invitees.set(userId, null);
    setInviteeState(call, userId, 'INVITING');
  }
  $('cancel-button', element).addEventListener('click', () => cancel(call));
  page.outgoing.set(invitationId, call);
  const list = $('outgoing-list');
  list.prepend(element);
  $('outgoing-section').hidden = false;
  tick();
  return call;
}

function setInviteeState(call, userId, state) {
  if (!call.invitees.has(userId)) return;
  const before = call.invitees.get(userId);
  if (before && FINAL.has(before)) return; // final states never change
  call.invitees.set(userId, state);
  const row = call.element.querySelector(`tr[data-user="${CSS.escape(userId)}"]`);
  const cell = $('invitee-state', row);
  cell.textContent = STATE_TEXT[state] ?? state;
  cell.dataset.state = state;
  row.dataset.state = state;
  const done = [...call.invitees.values()].every(
    (s) => FINAL.has(s) || (s === 'OFFLINE' && call.onlineOnly));
  if (done && !call.ended) {
    const states = [...call.invitees.values()];
    const summary = states.includes('ACCEPTED') ? 'Answered'
      : states.every((s) => s === 'CANCELLED') ? 'Cancelled'
      : states.every((s) => s === 'REJECTED') ? 'Refused'
      : 'Ended';
    endOutgoing(call, summary);
  }
}

function endOutgoing(call, text) {
  if (call.ended) return;
  call.ended = true;
  call.element.classList.add('ended');
  $('call-status', call.element).textContent = text;
  $('call-countdown', call.element).textContent = '';
  $('cancel-button', call.element).hidden = true;
}

async function cancel(call) {
  clearError();
  if (!page.client) return showError('Log in first.');
  const button = $('cancel-button', call.element);
  button.disabled = true;
  try {
    const { errorInvitees } = await page.client.cancelInvitation(call.invitationId);
    log('you', `cancelled ${call.invitationId}` +
        (errorInvitees.length ? ` (already final: ${errorInvitees.map((i) => `${i.userId} ${i.state}`).join(', ')})` : ''));
    for (const userId of call.invitees.keys()) setInviteeState(call, userId, 'CANCELLED');
    endOutgoing(call, 'Cancelled');
  } catch (e) {
    showError(e, 'Cancel');
  } finally {
    button.disabled = false;
  }
}

// ---- ringing ----------------------------------------------------------------

function addIncoming(detail) {
  if (page.incoming.has(detail.invitationId)) return;
  const element = document.getElementById('incoming-template').content.firstElementChild.cloneNode(true);
  element.dataset.invitationId = detail.invitationId;
  $('incoming-inviter', element).textContent = detail.inviter;
  $('incoming-id', element).textContent = detail.invitationId;
  const others = detail.invitees.filter((u) => u !== page.userId);
  $('incoming-invitees', element).textContent = others.length ? `Also invited: ${others.join(', ')}` : 'Only you are invited.';
  if (detail.extendedData) {
    const data = $('incoming-data', element);
    data.hidden = false;
    data.textContent = `Data: ${detail.extendedData}`;
  }
  const call = {
    invitationId: detail.invitationId,
    element,
    deadline: Date.now() + detail.secondsLeft * 1000,
    ended: false,
  };
  $('accept-button', element).addEventListener('click', () => answer(call, true));
  $('refuse-button', element).addEventListener('click', () => answer(call, false));
  page.incoming.set(detail.invitationId, call);
  $('incoming-list').prepend(element);
  $('incoming-section').hidden = false;
  tick();
  updateTitle();
  $('accept-button', element).focus({ preventScroll: true });
}

async function answer(call, accept) {
  clearError();
  if (!page.client) return showError('Log in first.');
  const buttons = [$('accept-button', call.element), $('refuse-button', call.element)];
  for (const b of buttons) b.disabled = true;
  call.answering = true;
  try {
    if (accept) await page.client.acceptInvitation(call.invitationId);
    else await page.client.refuseInvitation(call.invitationId);
    log('you', `${accept ? 'accepted' : 'refused'} ${call.invitationId}`);
    endIncoming(call, accept ? 'Accepted' : 'Refused');
  } catch (e) {
    showError(e, accept ? 'Accept' : 'Refuse');
    // An answer the invitation no longer takes ends the ringing here too.
    if (e instanceof BeckonError && ['INVITATION_CLOSED', 'ALREADY_ANSWERED', 'INVITATION_NOT_FOUND'].includes(e.codeName)) {
      endIncoming(call, 'Ended');
    }
  } finally {
    call.answering = false;
    for (const b of buttons) b.disabled = false;
  }
}

function endIncoming(call, text) {
  if (call.ended) return;
  call.ended = true;
  call.element.classList.remove('ringing');
  call.element.classList.add('ended');
  $('incoming-status', call.element).textContent = text;
  $('incoming-lead', call.element).textContent = 'Call from ';
  $('incoming-tail', call.element).textContent = '';
  $('incoming-countdown', call.element).textContent = '';
  for (const t of ['accept-button', 'refuse-button']) $(t, call.element).hidden = true;
  updateTitle();
}

function updateTitle() {
  const ringing = [...page.incoming.values()].filter((c) => !c.ended).length;
  document.title = ringing ? `(${ringing}) Ringing – Beckon phone` : 'Beckon phone';
}

// ---- events -----------------------------------------------------------------

function onEvent(client, detail) {
  if (client !== page.client) return;
  log('event', describe(detail), detail.kind);
  switch (detail.kind) {
    case 'CONNECTION_STATE_CHANGED':
      showConnection(detail.state, detail.reason);
      if (detail.state === 'DISCONNECTED' && ['KICKED_OUT', 'TOKEN_EXPIRED'].includes(detail.reason)) {
        showError(`Disconnected: ${detail.reason}. Log in again.`);
        dropClient();
      }
      break;
    case 'TOKEN_WILL_EXPIRE':
      showError(`The token expires in ${detail.secondsLeft} s; log in again with a fresh one.`);
      break;
    case 'INVITATION_RECEIVED':
      addIncoming(detail);
      break;
    case 'INVITATION_CANCELLED': {
      const call = page.incoming.get(detail.invitationId);
      if (call) endIncoming(call, 'Cancelled by the caller');
      break;
    }
    case 'INVITATION_TIMEOUT': {
      const call = page.incoming.get(detail.invitationId);
      if (call) endIncoming(call, 'Missed');
      break;
    }
    case 'INVITATION_ACCEPTED':
      outgoingState(detail.invitationId, detail.invitee, 'ACCEPTED');
      break;
    case 'INVITATION_REFUSED':
      outgoingState(detail.invitationId, detail.invitee, 'REJECTED');
      break;
    case 'INVITATION_RESPONSE_TIMEOUT':
      for (const userId of detail.invitees) outgoingState(detail.invitationId, userId, 'TIMEOUT');
      break;
    case 'INVITATION_USER_STATE_CHANGED': {
      outgoingState(detail.invitationId, detail.userId, detail.state);
      // This user answered (here, or on another device): stop ringing here.
      const call = page.incoming.get(detail.invitationId);
      if (call && detail.userId === page.userId && FINAL.has(detail.state) && !call.ended) {
        const here = call.answering && ['ACCEPTED', 'REJECTED'].includes(detail.state);
        endIncoming(call, here ? STATE_TEXT[detail.state] : `${STATE_TEXT[detail.state]} on another device`);
      }
      break;
    }
    default:
      break;
  }
}

function outgoingState(invitationId, userId, state) {
  const call = page.outgoing.get(invitationId);
  if (call) {
    setInviteeState(call, userId, state);
  } else if (!page.incoming.has(invitationId)) {
    // Our own send whose result has not arrived yet.
    const early = page.early.get(invitationId) ?? [];
    early.push([userId, state]);
    page.early.set(invitationId, early);
  }
}

function describe(d) {
  switch (d.kind) {
    case 'CONNECTION_STATE_CHANGED': return `connection ${d.state} (${d.reason})`;
    case 'TOKEN_WILL_EXPIRE': return `token expires in ${d.secondsLeft} s`;
    case 'INVITATION_RECEIVED':
      return `${d.inviter} invites you (${d.invitationId}), ${d.secondsLeft} s to answer` +
        (d.extendedData ? `, data ${d.extendedData}` : '');
    case 'INVITATION_CANCELLED': return `${d.inviter} cancelled ${d.invitationId}`;
    case 'INVITATION_ACCEPTED': return `${d.invitee} accepted ${d.invitationId}`;
    case 'INVITATION_REFUSED': return `${d.invitee} refused ${d.invitationId}`;
    case 'INVITATION_TIMEOUT': return `${d.invitationId} from ${d.inviter} timed out here`;
    case 'INVITATION_RESPONSE_TIMEOUT': return `no answer from ${d.invitees.join(', ')} to ${d.invitationId}`;
    case 'INVITATION_USER_STATE_CHANGED': return `${d.userId} is ${d.state} in ${d.invitationId}`;
    case 'INVITATION_PUSH_RESULT': return `push to ${d.invitee}: ${d.outcome}${d.reason ? ` (${d.reason})` : ''}`;
    default: return JSON.stringify(d);
  }
}

// ---- display ----------------------------------------------------------------

function showConnection(state, reason) {
  const badge = $('connection-state');
  badge.dataset.state = state;
  let text = CONNECTION_TEXT[state] ?? state;
  if (state === 'DISCONNECTED' && reason && reason !== 'LOGOUT' && reason !== 'LOGIN') text += ` (${reason.toLowerCase().replace('_', ' ')})`;
  $('connection-text').textContent = text;
}

function tick() {
  const now = Date.now();
  for (const call of page.incoming.values()) {
    if (!call.ended) $('incoming-countdown', call.element).textContent = countdown(call.deadline - now);
  }
  for (const call of page.outgoing.values()) {
    if (!call.ended) $('call-countdown', call.element).textContent = countdown(call.deadline - now);
  }
}

function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function showError(error, what) {
  const box = $('error');
  let text;
  if (error instanceof BeckonError) text = `${what ? `${what}: ` : ''}${error.codeName}: ${error.message}`;
  else if (error instanceof Error) text = `${what ? `${what}: ` : ''}${error.message}`;
  else text = String(error);
  box.textContent = text;
  box.hidden = false;
  log('error', text, 'ERROR');
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

function setBusy(testid, busy) {
  const button = $(testid);
  button.disabled = busy;
  button.setAttribute('aria-busy', String(busy));
}

function log(source, text, kind = '') {
  const item = document.createElement('li');
  item.dataset.source = source;
  if (kind) item.dataset.kind = kind;
  const time = document.createElement('time');
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toTimeString().slice(0, 8);
  const body = document.createElement('span');
  body.textContent = text;
  item.append(time, ' ', body);
  const list = $('log');
  list.prepend(item);
  while (list.childElementCount > LOG_LIMIT) list.lastElementChild.remove();
}
