// The chat page of rally's examples. It talks to the server with the
// official Socket.IO client (the global `io`, from /vendor/socket.io.min.js)
// and the events listed in the chat package's documentation.
'use strict';

const MAX_FILE = 512 * 1024; // chat.MaxFile
const ACK_TIMEOUT = 10000;   // ms

const $ = (id) => document.getElementById(id);

// The page's own query: ?token=... fills the Token field;
// ?transports=polling (or websocket) restricts the client's transports.
const params = new URLSearchParams(location.search);

const state = {
  socket: null,  // the Socket.IO socket, created by the first join
  token: '',     // the token it was opened with
  nickname: '',
  want: null,    // the room the user asked for; joined again after a reconnection
  room: null,    // the room joined
};

if (typeof io !== 'function') {
  showMissingClient();
} else {
  $('token').value = params.get('token') || '';
  $('join-form').addEventListener('submit', (ev) => { ev.preventDefault(); run(join); });
  $('leave').addEventListener('click', () => run(leave));
  $('message-form').addEventListener('submit', (ev) => { ev.preventDefault(); run(sendText); });
  $('file-form').addEventListener('submit', (ev) => { ev.preventDefault(); run(sendFile); });
}

// showMissingClient shows why the client bundle did not load: the server
// answers with the command that installs it.
async function showMissingClient() {
  $('join').disabled = true;
  let text = 'the Socket.IO client did not load';
  try {
    const res = await fetch('/vendor/socket.io.min.js');
    if (!res.ok) text = (await res.text()).trim();
  } catch (err) {
    text += ': ' + err.message;
  }
  setStatus(text, true);
}

function setStatus(text, error = false) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', error);
}

// run calls an async action and shows its error.
async function run(action) {
  try {
    await action();
  } catch (err) {
    setStatus(err.message, true);
  }
}

// request emits an event and waits for its ack; the server acks a failed
// event with {error: "..."}.
async function request(event, ...args) {
  const res = await state.socket.timeout(ACK_TIMEOUT).emitWithAck(event, ...args);
  if (res && typeof res === 'object' && typeof res.error === 'string') {
    throw new Error(`${event}: ${res.error}`);
  }
  return res;
}

function openSocket(token) {
  // Same origin: io() connects to the server that served the page. A
  // browser cannot set headers on a websocket, so the token goes in the
  // query, where the server's HTTP middleware checks it.
  const opts = { query: token ? { token } : {} };
  if (params.get('transports')) opts.transports = params.get('transports').split(',');
  const socket = io(opts);

  socket.on('connect', () => {
    showConnected();
    socket.io.engine.once('upgrade', showConnected);
    if (state.want) run(enter); // first join, or back after a reconnection
  });
  socket.on('disconnect', (reason) => {
    setStatus(`disconnected: ${reason}${socket.active ? ', reconnecting…' : ''}`, !socket.active);
  });
  socket.on('connect_error', (err) => {
    if (!socket.active) {
      // Refused by the server's connect middleware: err.message and
      // err.data come from its rally.ConnectError.
      const code = err.data && err.data.code ? ` [${err.data.code}]` : '';
      setStatus(`refused: ${err.message}${code}`, true);
    } else if (err.description === 403) {
      socket.disconnect(); // the HTTP middleware refused the token: retrying won't help
      setStatus('refused: invalid token', true);
    } else {
      setStatus(`cannot connect (${err.message}), retrying…`, true);
    }
  });

  socket.on('users', (info) => { if (info.room === state.room) renderUsers(info.users); });
  socket.on('chat message', (m) => { if (m.room === state.room) addText(m, false); });
  socket.on('file', (f) => { if (f.room === state.room) addFile(f, f.data, false); });
  socket.on('greetings', (...args) => console.log('greetings', ...args));
  return socket;
}

function showConnected() {
  const s = state.socket;
  if (s && s.connected) setStatus(`connected as ${state.nickname} (${s.io.engine.transport.name})`);
}

async function join() {
  const token = $('token').value.trim();
  state.nickname = $('nickname').value.trim();
  state.want = $('room').value.trim();
  if (state.socket && token === state.token) {
    if (state.socket.connected) await enter();
    else state.socket.connect(); // enter() runs on connect
    return;
  }
  if (state.socket) state.socket.disconnect();
  state.token = token;
  state.socket = openSocket(token); // enter() runs on connect
}

// enter sets the nickname and joins the wanted room.
async function enter() {
  state.nickname = await request('set nickname', state.nickname);
  if (state.room && state.room !== state.want) {
    await request('leave', state.room);
    state.room = null;
  }
  const info = await request('join', state.want);
  if (state.room !== info.room) $('messages').replaceChildren();
  state.room = info.room;
  $('room-name').textContent = info.room;
  renderUsers(info.users);
  $('chat').hidden = false;
  showConnected();
}

async function leave() {
  const room = state.room;
  state.want = null;
  state.room = null;
  $('chat').hidden = true;
  $('messages').replaceChildren();
  if (room) await request('leave', room);
}

async function sendText() {
  const input = $('text');
  if (!input.value.trim() || !state.room) return;
  const m = await request('chat message', state.room, input.value);
  addText(m, true);
  input.value = '';
  input.focus();
}

async function sendFile() {
  const input = $('file');
  const file = input.files[0];
  if (!file || !state.room) return;
  if (file.size > MAX_FILE) throw new Error(`${file.name} is larger than ${MAX_FILE} bytes`);
  // An ArrayBuffer travels as a binary attachment; the server gets a []byte.
  const data = await file.arrayBuffer();
  const res = await request('file', state.room, { name: file.name, type: file.type, data });
  addFile({ from: state.nickname, name: res.name, type: res.type, time: new Date() }, data, true);
  input.value = '';
}

function renderUsers(users) {
  $('users').replaceChildren(...users.map((u) => {
    const li = document.createElement('li');
    li.textContent = u.nickname;
    li.dataset.id = u.id;
    li.classList.toggle('member', u.member);
    li.classList.toggle('me', u.id === state.socket.id);
    return li;
  }));
}

// item appends a message line and returns its body element.
function item(kind, m, own) {
  const li = document.createElement('li');
  li.className = `msg ${kind}${own ? ' own' : ''}`;
  li.dataset.from = m.from;
  const time = document.createElement('span');
  time.className = 'time';
  time.textContent = new Date(m.time || Date.now()).toLocaleTimeString();
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = m.from;
  const body = document.createElement('span');
  body.className = 'body';
  li.append(time, from, body);
  const list = $('messages');
  list.append(li);
  list.scrollTop = list.scrollHeight;
  return body;
}

function addText(m, own) {
  item('text', m, own).textContent = m.text;
}

// addFile shows a file: the image itself for images, a download link
// otherwise, and its size as received.
function addFile(f, data, own) {
  const body = item('file', f, own);
  const li = body.parentElement;
  li.dataset.name = f.name;
  li.dataset.size = String(data.byteLength);
  const url = URL.createObjectURL(new Blob([data], { type: f.type || 'application/octet-stream' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = f.name;
  link.textContent = `${f.name} (${data.byteLength} bytes)`;
  body.append(link);
  if (/^image\//.test(f.type)) {
    const img = document.createElement('img');
    img.alt = f.name;
    img.src = url;
    body.append(img);
  }
}
