'use strict'
// examples/node-worker (runbook 004): the worker pushes its own counts per queue and the stock
// worker/error-rate and worker/queue-depth rules fire through its JS receiver. The example is
// TypeScript, compiled by `npm test`'s pretest (tsc -p ../../examples/node-worker).
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { REPO, T0, minutes } = require('./helpers.js')

const worker = require(path.join(REPO, 'examples', 'node-worker', 'dist', 'worker.js'))

test('an error rate over 5% and a backlog over 1000 fire, once each, with their runbooks', async () => {
  const sent = []
  const monitor = new worker.QueueMonitor((n) => sent.push(n))
  monitor.record(T0, [
    { queue: 'intelliflow:events', completed: 90, failed: 10, waiting: 20 },
    { queue: 'intelliflow:text-extraction', completed: 300, failed: 0, waiting: 4200 },
    { queue: 'intelliflow:notifications:email', completed: 99, failed: 1, waiting: 3 },
  ])
  const r = await monitor.check(T0)
  assert.deepEqual(r.firing.map((a) => a.name).sort(), ['JobErrorRate', 'QueueBacklog'])
  const alerts = sent.flatMap((n) => n.alerts.map((a) => [n.receiver, a.labels.queue, a.summary, a.runbook]))
  assert.deepEqual(alerts.sort(), [
    ['platform-alerts', 'intelliflow:events', 'intelliflow:events: 10% of jobs failed (threshold 5%): investigate the root cause before scaling', 'https://runbooks.example.com/worker/error-rate'],
    ['platform-alerts', 'intelliflow:text-extraction', 'intelliflow:text-extraction has 4200 waiting jobs (threshold 1000): scale up its workers', 'https://runbooks.example.com/worker/queue-depth'],
  ])
  // The next window is healthy: both resolve and the receiver hears it.
  monitor.record(minutes(1), [
    { queue: 'intelliflow:events', completed: 100, failed: 0, waiting: 0 },
    { queue: 'intelliflow:text-extraction', completed: 300, failed: 0, waiting: 10 },
  ])
  const after = await monitor.check(minutes(1))
  assert.deepEqual(after.alerts.map((a) => a.state), ['resolved', 'resolved'])
  assert.deepEqual(sent.slice(2).map((n) => n.status), ['resolved', 'resolved'])
})

test('the simulated worker loop raises both alerts', async () => {
  const sent = await worker.main(5)
  const names = new Set(sent.flatMap((n) => n.alerts.map((a) => a.name)))
  assert.deepEqual([...names].sort(), ['JobErrorRate', 'QueueBacklog'])
})
