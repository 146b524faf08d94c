// A Socket.IO protocol v4 client (socket.io-client 2.x, as bundled by older Rasa
// widgets) driven by tests/api/socketio_v4.rs. Usage: node socketio_v4_client.cjs URL USER_ID
// Prints one JSON line per event received; exits 0 after the first bot_uttered.
'use strict';
const io = require('socket.io-client-v2');

const [url, userId] = process.argv.slice(2);
const sessionId = 'v4' + Date.now().toString(16);
const print = (event, data) => console.log(JSON.stringify({ event, data }));
const fail = (code, message) => {
  console.error(message);
  process.exit(code);
};

const timer = setTimeout(() => fail(2, 'timed out waiting for the server'), 15000);
const socket = io(url, { reconnection: false, transports: ['polling', 'websocket'] });
socket.on('connect', () => socket.emit('session_request', { session_id: sessionId }));
socket.on('connect_error', (e) => fail(3, 'connect_error: ' + (e && e.message)));
socket.on('session_confirm', (id) => {
  print('session_confirm', { sent: sessionId, received: id });
  socket.emit('user_uttered', {
    message: 'what did I just do?',
    session_id: sessionId,
    customData: { userId },
  });
});
socket.on('bot_uttered', (message) => {
  print('bot_uttered', message);
  clearTimeout(timer);
  socket.close();
  process.exit(0);
});
