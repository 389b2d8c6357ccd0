// A BullMQ-style worker that watches itself with Tripline (runbook 004). The worker already
// knows, per queue, how many jobs it completed and failed in the last window and how many wait:
// it pushes those numbers, runs a cycle, and the stock worker/error-rate and worker/queue-depth
// rules fire through its own receiver. `SimulatedQueue` stands in for a BullMQ queue so the
// example runs without Redis; with BullMQ, count `completed` / `failed` events of the Worker
// and read `queue.getWaitingCount()`.

import * as path from 'node:path'
import { CycleReport, Engine, Notification } from 'tripline'

/** One window of a queue, as its worker saw it. */
export interface QueueWindow {
  queue: string
  completed: number
  failed: number
  waiting: number
}

export type Receiver = (n: Notification) => unknown

export const CONFIG = path.join(__dirname, '..', 'tripline.toml')

/** The worker's own Tripline: pushes each window's counts and checks the rules. */
export class QueueMonitor {
  readonly engine: Engine

  constructor(receiver: Receiver, config: string = CONFIG, store = ':memory:') {
    this.engine = Engine.fromConfig(config, { store }, { 'platform-alerts': receiver })
  }

  /** The window's numbers, one labelled series per queue (they replace the last window's). */
  record(at: Date, windows: QueueWindow[]): void {
    for (const w of windows) {
      const options = { labels: { queue: w.queue } }
      this.engine.pushSeries('jobs_completed', w.completed, at, options)
      this.engine.pushSeries('jobs_failed', w.failed, at, options)
      this.engine.pushSeries('queue_depth', w.waiting, at, options)
    }
  }

  /** Evaluates the rules at `at`; notifications reach the receiver before this resolves. */
  check(at: Date): Promise<CycleReport> {
    return this.engine.runCycle({ at })
  }
}

/** An in-process queue with a failure rate and an arrival rate per tick. */
export class SimulatedQueue {
  waiting = 0
  private completed = 0
  private failed = 0

  constructor(
    readonly name: string,
    private readonly arrivals: number,
    private readonly capacity: number,
    private readonly failEvery: number,
  ) {}

  tick(): void {
    this.waiting += this.arrivals
    const take = Math.min(this.waiting, this.capacity)
    for (let i = 1; i <= take; i++) {
      if (this.failEvery > 0 && i % this.failEvery === 0) this.failed++
      else this.completed++
    }
    this.waiting -= take
  }

  /** This window's counts; the next window starts from zero. */
  window(): QueueWindow {
    const w = { queue: this.name, completed: this.completed, failed: this.failed, waiting: this.waiting }
    this.completed = 0
    this.failed = 0
    return w
  }
}

export async function main(ticks = 5): Promise<Notification[]> {
  const sent: Notification[] = []
  const monitor = new QueueMonitor((n) => {
    sent.push(n)
    for (const a of n.alerts) console.log(`${n.status} ${a.severity} ${a.summary} (${a.runbook ?? '-'})`)
  })
  const queues = [
    new SimulatedQueue('intelliflow:events', 100, 100, 10), // 10% of jobs fail
    new SimulatedQueue('intelliflow:text-extraction', 600, 300, 0), // falls behind
    new SimulatedQueue('intelliflow:notifications:email', 50, 100, 0),
  ]
  const start = Date.now()
  for (let t = 0; t < ticks; t++) {
    for (const q of queues) q.tick()
    const at = new Date(start + t * 60_000)
    monitor.record(at, queues.map((q) => q.window()))
    await monitor.check(at)
  }
  return sent
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(e)
    process.exit(1)
  })
}
