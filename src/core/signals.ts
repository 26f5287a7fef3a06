/** How a foreground server (one process, or the attendant of several) ends on a signal. */
import { unlinkSync } from 'node:fs';

/**
 * Resolves with exit code 0 after the first SIGTERM or SIGINT: logs it, runs `stop` once,
 * then removes the pid file (if any).
 */
export function untilSignal(
  log: { info(msg: string): void },
  what: string,
  stop: () => Promise<unknown>,
  pidFile: string | undefined,
): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (sig: string) => {
      if (stopping) return;
      stopping = true;
      log.info(`signal ${sig} received, ${what}`);
      void stop().finally(() => {
        if (pidFile) {
          try {
            unlinkSync(pidFile);
          } catch {
            /* already gone */
          }
        }
        resolve(0);
      });
    };
    process.on('SIGTERM', () => onSignal('SIGTERM'));
    process.on('SIGINT', () => onSignal('SIGINT'));
  });
}
