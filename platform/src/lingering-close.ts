import { STATUS_CODES } from 'node:http';
import { Socket } from 'node:net';

/**
 * How long and how much a closing connection is still read from. A refused upload keeps coming
 * for a while; past either bound the client is cut off.
 */
export const LINGER = { ms: 2000, bytes: 8 * 1024 * 1024 };

const lingering = new WeakSet<Socket>();
const plainDestroySoon = Socket.prototype.destroySoon;

/**
 * Ends a connection whose client may still be sending (a refused body, the rest of an oversized
 * head): the answer goes out with a FIN, and what arrives after it is read and dropped until the
 * client closes its side or a bound of LINGER is reached. Closing with unread input would make
 * the kernel answer with a reset, which can destroy the answer before the client reads it (the
 * lingering close of nginx and Apache).
 */
export function lingeringClose(socket: Socket, bounds: { ms: number; bytes: number } = LINGER): void {
  if (socket.destroyed || lingering.has(socket)) return;
  lingering.add(socket);
  if (socket.readableEnded) {
    plainDestroySoon.call(socket);
    return;
  }
  const from = socket.bytesRead;
  const cut = () => socket.destroy();
  const timer = setTimeout(cut, bounds.ms).unref();
  // With node's parser reading the handle itself there is no 'data' event to count on.
  const meter = setInterval(() => {
    if (socket.bytesRead - from > bounds.bytes) cut();
  }, 50).unref();
  socket.once('close', () => {
    clearTimeout(timer);
    clearInterval(meter);
  });
  socket.once('end', cut);
  socket.on('error', () => {});
  socket.end();
  socket.resume();
}

/**
 * Makes node:http's close after a `Connection: close` answer (its `destroySoon`) a lingering
 * close, for this one connection: set before an answer that refuses a body still arriving.
 */
export function lingerAfterAnswer(socket: Socket | null | undefined): void {
  if (!socket || socket.destroyed) return;
  socket.destroySoon = () => lingeringClose(socket);
}

/**
 * fastify's `clientErrorHandler`: node:http could not parse a request. A head over the size limit
 * is answered 431, a request not whole in time 408, anything else 400, as the gateway's own
 * server answers them, and the connection closes lingering. Node calls this again for each read
 * after the failed one; those reads are the lingering.
 */
export function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed || lingering.has(socket)) return;
  const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  const text = STATUS_CODES[status]!;
  // A request being answered on this connection writes its own answer: only the close is ours.
  const busy = (socket as Socket & { _httpMessage?: { headersSent: boolean } | null })._httpMessage;
  if (socket.writable && !busy?.headersSent) {
    socket.write(`HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
  }
  lingeringClose(socket);
}
