/**
 * The process side of the bench's own servers (bench/baseline-server.mjs, bench/floor-server.mjs):
 * listen, print the ready line bin/server prints, and stop on SIGTERM/SIGINT.
 */
import process from 'node:process';
import { setTimeout } from 'node:timers';

/**
 * Listens on `host`:`port` and prints `{"msg":"listening …","port":N}` once ready. On SIGTERM or
 * SIGINT, closes the listener, calls `stop` (to end the open connections) and exits once the
 * server has closed, or after a second.
 * @param {import('node:net').Server} server
 * @param {string} host
 * @param {number} port
 * @param {() => void} stop
 */
export function serve(server, host, port, stop) {
  server.listen(port, host, () => {
    const address = /** @type {import('node:net').AddressInfo} */ (server.address());
    process.stdout.write(
      `${JSON.stringify({ msg: `listening on ${address.address}:${address.port}`, port: address.port })}\n`,
    );
  });
  const onSignal = () => {
    server.close();
    stop();
    setTimeout(() => process.exit(0), 1_000).unref();
    server.on('close', () => process.exit(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
