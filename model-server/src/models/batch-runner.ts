/**
 * Dynamic batching for one ONNX session. Requests that arrive in the same turn of the event loop
 * are stacked into one input tensor and scored by one `session.run`: the fixed cost of a run
 * (more than the arithmetic of a small model) is paid once per batch instead
 * of once per request. Rows are independent in every graph this serves ([N, F] → [N, 1]), so a
 * batch gives each request exactly what it would get alone.
 *
 * A failed batch is retried one request at a time, so an input that breaks the graph fails only
 * its own request (which then falls back), never its neighbours.
 */
import * as ort from 'onnxruntime-node';

/** Larger batches are split: one huge request should not hold up the small ones behind it. */
const MAX_BATCH_ROWS = 4096;

interface Pending {
  data: Float32Array;
  rows: number;
  resolve: (scores: Float32Array) => void;
  reject: (err: Error) => void;
}

export class BatchRunner {
  private queue: Pending[] = [];
  private scheduled = false;
  /** session.run calls, and requests answered: their ratio is the mean batch size. */
  readonly stats = { runs: 0, requests: 0 };

  constructor(
    private readonly session: ort.InferenceSession,
    private readonly input: string,
    private readonly output: string,
    private readonly width: number,
    /** False for a graph whose rows interact: each request then runs alone. */
    private readonly batching = true,
  ) {}

  /** Scores `rows` instances (row-major `data`, `width` features each): one float per row. */
  run(data: Float32Array, rows: number): Promise<Float32Array> {
    this.stats.requests++;
    if (!this.batching) return this.score(data, rows);
    return new Promise((resolve, reject) => {
      this.queue.push({ data, rows, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const queue = this.queue;
    this.queue = [];
    let batch: Pending[] = [];
    let rows = 0;
    for (const p of queue) {
      if (rows > 0 && rows + p.rows > MAX_BATCH_ROWS) {
        void this.runBatch(batch, rows);
        batch = [];
        rows = 0;
      }
      batch.push(p);
      rows += p.rows;
    }
    if (batch.length) void this.runBatch(batch, rows);
  };

  private async runBatch(batch: Pending[], rows: number): Promise<void> {
    if (batch.length === 1) {
      const p = batch[0]!;
      try {
        p.resolve(await this.score(p.data, p.rows));
      } catch (err) {
        p.reject(err as Error);
      }
      return;
    }
    const data = new Float32Array(rows * this.width);
    let offset = 0;
    for (const p of batch) {
      data.set(p.data, offset);
      offset += p.data.length;
    }
    let scores: Float32Array;
    try {
      scores = await this.score(data, rows);
    } catch {
      await Promise.all(batch.map((p) => this.runBatch([p], p.rows)));
      return;
    }
    let row = 0;
    for (const p of batch) {
      p.resolve(scores.subarray(row, row + p.rows));
      row += p.rows;
    }
  }

  private async score(data: Float32Array, rows: number): Promise<Float32Array> {
    this.stats.runs++;
    const out = await this.session.run({ [this.input]: new ort.Tensor('float32', data, [rows, this.width]) });
    const scores = out[this.output]?.data;
    if (!(scores instanceof Float32Array) || scores.length !== rows) {
      throw new Error(`output ${this.output} gave ${scores?.length ?? 0} float32 values for ${rows} instances`);
    }
    return scores;
  }
}
