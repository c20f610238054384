// Starts the ringhub binary named by $RINGHUB on a free loopback port, with the extra flags in
// $RINGHUB_ARGS and then @flags, and stops it with SIGTERM. Its log goes to our stderr.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';

export async function startServer(flags = []) {
  const binary = process.env.RINGHUB;
  if (!binary) throw new Error('set RINGHUB to the ringhub binary');
  const extra = (process.env.RINGHUB_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(binary, ['--listen', '127.0.0.1', '--port', '0', ...extra, ...flags], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  const lines = readline.createInterface({ input: child.stderr });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('ringhub did not start listening')), 10000);
    child.once('exit', (code) => reject(new Error(`ringhub exited with ${code} at start`)));
    lines.on('line', (line) => {
      process.stderr.write(line + '\n');
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return {
    port,
    pid: child.pid,
    url: (hub) => `http://127.0.0.1:${port}/hubs/${hub}`,
    // Resolves to the exit code; 0 means a clean stop with nothing left allocated.
    async stop() {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code, signal] = await exited;
      return signal ? signal : code;
    },
  };
}
