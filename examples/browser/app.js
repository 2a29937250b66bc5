// Herald browser demo: ?url=ws://127.0.0.1:8080/v1/ws&client=demo[&token=JWT][&resume=1]
// Imports the built SDK (clients/js/dist) as a plain ES module: serve the repository root with
// any static server and open /examples/browser/index.html.
import { connect, memoryStore, localStorageStore } from '../../clients/js/dist/index.js';

const params = new URLSearchParams(location.search);
const defaultUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;
const url = params.get('url') || defaultUrl;
const clientId = params.get('client') || 'demo';
const token = params.get('token') || undefined;
// resume=1: remember the newest processed id in localStorage, so a reload resumes after it.
const storage = params.get('resume') === '1' ? localStorageStore(`herald.last_id.${clientId}`) : memoryStore();

const $ = (id) => document.getElementById(id);
$('url').textContent = url;
$('client').textContent = clientId;

function log(line) {
  const t = new Date().toISOString().slice(11, 23);
  $('log').textContent = `${t} ${line}\n` + $('log').textContent;
}

const client = connect({ url, clientId, token, storage, backoff: { initialMs: 250, maxMs: 5000 } });
window.heraldClient = client; // for tests and the console

function showState() {
  $('state').textContent = client.state;
  $('state').dataset.state = client.state;
}

client.on('connected', (ev) => { showState(); log(`connected (session ${ev.session}, instance ${ev.instance})`); });
client.on('disconnected', (ev) => {
  showState();
  log(`disconnected ${ev.code}${ev.error ? ` ${ev.error}` : ''}${ev.willReconnect ? '' : ' (final)'}`);
});
client.on('reconnecting', (ev) => { showState(); log(`reconnecting: attempt ${ev.attempt} in ${ev.delayMs} ms`); });
client.on('error', (ev) => log(`error ${ev.code}: ${ev.message}`));
client.on('notification', (n) => {
  const li = document.createElement('li');
  li.className = 'notification';
  if (n.id) li.dataset.id = n.id;
  const id = document.createElement('span');
  id.className = 'id';
  id.textContent = n.id ?? '(non-durable)';
  const body = document.createElement('code');
  body.className = 'data';
  body.textContent = JSON.stringify(n.data);
  li.append(id, body);
  $('notifications').append(li);
  $('count').textContent = String(document.querySelectorAll('#notifications li').length);
});
showState();
