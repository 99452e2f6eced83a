/** The logger calls a service's components make (pino's argument order, so the app's logger fits). */
export interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** For components built without a logger (tests, tools). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/**
 * The composition root builds components before the fastify app (and its pino logger) exists;
 * they log through this sink, which writes JSON lines to stderr until `buildApp` points it at the
 * app's logger.
 */
export class LogSink implements Logger {
  private target: Logger | null = null;

  constructor(
    private readonly service: string,
    private readonly silent = false,
  ) {}

  use(target: Logger): void {
    this.target = target;
  }

  info(obj: object, msg: string): void {
    this.write('info', obj, msg);
  }

  warn(obj: object, msg: string): void {
    this.write('warn', obj, msg);
  }

  error(obj: object, msg: string): void {
    this.write('error', obj, msg);
  }

  private write(level: 'info' | 'warn' | 'error', obj: object, msg: string): void {
    if (this.target) return this.target[level](obj, msg);
    if (this.silent) return;
    process.stderr.write(JSON.stringify({ level, time: Date.now(), service: this.service, ...obj, msg }) + '\n');
  }
}
