'use strict'
// Every call of the Node API against the real engine.
const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')

const tripline = require('..')
const { Engine } = tripline
const { REPO, T0, minutes, DEPTH_RULE } = require('./helpers.js')

const depthEngine = (receivers) =>
  Engine.build(
    {
      stockRules: false,
      ruleSources: [{ origin: 'host/depth.rhai', text: DEPTH_RULE }],
      instances: [{ name: 'email-depth', rule: 'host/depth', params: { threshold: 100 }, labels: { team: 'mail' } }],
    },
    receivers,
  )

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tripline-node-'))

test('a built engine fires with state, severity, labels, runbook, value and start', async () => {
  const e = depthEngine()
  assert.deepEqual(e.instances, ['email-depth'])
  e.pushSeries('depth', [250], [T0])
  const r = await e.runCycle({ at: T0 })
  assert.equal(r.instancesEvaluated, 1)
  assert.equal(r.alerts.length, 1)
  const [a] = r.alerts
  assert.deepEqual([a.state, a.severity, a.summary, a.value], ['firing', 'warning', 'depth 250', 250])
  assert.deepEqual(a.labels, { alertname: 'email-depth', queue: 'emails', team: 'mail' })
  assert.equal(a.runbook, 'https://runbooks.example.com/host#depth')
  assert.ok(a.startsAt instanceof Date)
  assert.equal(a.startsAt.getTime(), T0.getTime())
  assert.equal(a.activeSince.getTime(), T0.getTime())
  assert.equal(a.endsAt, undefined)
  assert.deepEqual([a.rule, a.instance, a.name], ['host/depth', 'email-depth', 'email-depth'])
  assert.equal(r.firing[0].fingerprint, a.fingerprint)
  assert.equal(r.at.getTime(), T0.getTime())
})

test('below the threshold nothing fires; epoch milliseconds are instants too', async () => {
  const e = depthEngine()
  e.pushSeries('depth', 20, T0.getTime())
  assert.deepEqual((await e.runCycle({ at: T0.getTime() })).alerts, [])
})

test('for makes an alert pending first, keep_firing_for holds it, then it resolves', async () => {
  const dir = tmp()
  fs.mkdirSync(path.join(dir, 'rules'))
  fs.writeFileSync(path.join(dir, 'rules', 'depth.rhai'), DEPTH_RULE)
  fs.writeFileSync(
    path.join(dir, 't.toml'),
    'rules_dirs = ["rules"]\nstock_rules = false\n\n[[rule]]\nname = "d"\nuse = "host/depth"\nfor = "2m"\nkeep_firing_for = "5m"\n',
  )
  const e = Engine.fromConfig(path.join(dir, 't.toml'))
  const states = async (m, v) => {
    if (v !== undefined) e.pushSeries('depth', v, minutes(m))
    return (await e.runCycle({ at: minutes(m) })).alerts.map((a) => a.state)
  }
  assert.deepEqual(await states(0, 500), ['pending'])
  assert.deepEqual(await states(2, 500), ['firing'])
  assert.deepEqual(await states(3, 1), ['firing'])
  assert.deepEqual(await states(9, 1), ['resolved'])
})

test('builder settings: for, severity, runbook, every and a SQLite store shared by two engines', async () => {
  const db = path.join(tmp(), 'state.db')
  const build = () =>
    Engine.build({
      stockRules: false,
      ruleSources: [{ origin: 'host/depth.rhai', text: DEPTH_RULE }],
      store: db,
      instances: [{ name: 'd', rule: 'host/depth', for: '1m', keepFiringFor: '1m', severity: 'critical', runbook: 'https://wiki/depth', every: '0 * * * * *' }],
    })
  const e = build()
  e.pushSeries('depth', 500, T0)
  const [a] = (await e.runCycle({ at: T0 })).alerts
  assert.deepEqual([a.state, a.severity, a.runbook], ['pending', 'critical', 'https://wiki/depth'])
  const e2 = build()
  e2.pushSeries('depth', 500, minutes(1))
  assert.deepEqual((await e2.runCycle({ at: minutes(1) })).alerts.map((x) => x.state), ['firing'])
  assert.deepEqual(e2.alerts().map((x) => x.state), ['firing'])
})

test('Float64Array values and timestamps, and mismatched lengths are an InvalidArgument', async () => {
  const e = depthEngine()
  e.pushSeries('depth', new Float64Array([5, 700]), new Float64Array([minutes(-1).getTime(), T0.getTime()]))
  assert.equal((await e.runCycle({ at: T0 })).alerts[0].value, 700)
  assert.throws(() => e.pushSeries('depth', [1], [T0, T0]), (err) => {
    assert.ok(err instanceof tripline.InvalidArgument)
    assert.equal(err.code, 'ERR_TRIPLINE_VALUE')
    assert.match(err.message, /2 timestamps but 1 values/)
    return true
  })
})

test('a sequence without timestamps ends now', async () => {
  const e = depthEngine()
  e.pushSeries('depth', [1, 2, 300])
  assert.equal((await e.runCycle()).alerts[0].value, 300)
})

test('labelled series make a set; tables are rows', async () => {
  const e = Engine.build({
    instances: [
      { name: 'QueueBacklog', rule: 'worker/queue-depth', params: { source: 'pushed', threshold: 100 } },
      { name: 'JobErrorRate', rule: 'worker/error-rate', params: { source: 'pushed' } },
    ],
  })
  e.pushSeries('queue_depth', 500, T0, { labels: { queue: 'emails' } })
  e.pushSeries('queue_depth', 900, T0, { labels: { queue: 'sms' } })
  e.pushSeries('queue_depth', 5, T0, { labels: { queue: 'sms' } })
  e.pushSeries('jobs_completed', 90, T0, { labels: { queue: 'emails' } })
  e.pushSeries('jobs_failed', 10, T0, { labels: { queue: 'emails' } })
  const r = await e.runCycle({ at: T0 })
  assert.deepEqual(r.firing.map((a) => a.summary).sort(), [
    'emails has 500 waiting jobs (threshold 100): scale up its workers',
    'emails: 10% of jobs failed (threshold 5%): investigate the root cause before scaling',
  ])
  e.clearPushed()
  const after = await e.runCycle({ at: minutes(1) })
  assert.deepEqual(after.alerts.map((a) => a.state), ['firing', 'firing'], 'missing data is ignored: state kept')

  const rows = Engine.build({
    stockRules: false,
    ruleSources: [{
      origin: 't.rhai',
      text: 'const RULE = #{ id: "host/rows", severity: "high", params: #{} };\nfn query(p) { #{ runs: pushed("runs") } }\nfn evaluate(d, p) { if type_of(d.runs) != "Table" { return; } for r in d.runs.rows { if r.status == "failed" { fire(#{ summary: `run ${r.id} failed: ${r.error}`, labels: #{ run: r.id } }); } } }\n',
    }],
    instances: [{ name: 'runs', rule: 'host/rows' }],
  })
  rows.pushTable('runs', [{ id: 'a', status: 'ok' }, { id: 'b', status: 'failed', error: 'timeout', n: 3 }])
  assert.deepEqual((await rows.runCycle({ at: T0 })).alerts.map((a) => a.summary), ['run b failed: timeout'])
  assert.throws(() => rows.pushTable('runs', [1]), tripline.InvalidArgument)
})

test('runCycle can evaluate only some instances', async () => {
  const e = Engine.build({
    stockRules: false,
    ruleSources: [{ origin: 'host/depth.rhai', text: DEPTH_RULE }],
    instances: [{ name: 'a', rule: 'host/depth' }, { name: 'b', rule: 'host/depth' }],
  })
  e.pushSeries('depth', 500, T0)
  assert.deepEqual((await e.runCycle({ at: T0, instances: ['b'] })).alerts.map((a) => a.instance), ['b'])
  await assert.rejects(e.runCycle({ at: T0, instances: ['c'] }), tripline.InvalidArgument)
})

test('runCycle leaves the event loop free: a server in this process answers the cycle', async (t) => {
  // The cycle waits on an HTTP answer only this process's event loop can give.
  let answered = 0
  const srv = http.createServer((req, res) => {
    answered++
    res.setHeader('Content-Type', 'application/json')
    res.end(JSON.stringify({
      status: 'success',
      data: { resultType: 'vector', result: [{ metric: { queue: 'emails' }, value: [T0.getTime() / 1000, '1500'] }] },
    }))
  })
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  t.after(() => srv.close())
  const e = Engine.build({
    sources: { prometheus: { type: 'prometheus', url: `http://127.0.0.1:${srv.address().port}`, timeout: '5s' } },
    instances: [{ name: 'queue', rule: 'worker/queue-depth' }],
  })
  const r = await e.runCycle({ at: T0 })
  assert.deepEqual(r.sourceFailures, [])
  assert.deepEqual(r.alerts.map((a) => a.summary), ['emails has 1500 waiting jobs (threshold 1000): scale up its workers'])
  assert.ok(answered >= 1)
})

test('a failing source is an error state; raiseOnFailure rejects with a SourceError carrying the report', async () => {
  const e = Engine.build({
    sources: { prometheus: { type: 'prometheus', url: 'http://127.0.0.1:9', timeout: '2s' } },
    instances: [{ name: 'queue', rule: 'worker/queue-depth' }],
  })
  const r = await e.runCycle({ at: T0 })
  assert.deepEqual(r.sourceFailures.map((f) => f.name), ['queue'])
  assert.deepEqual(r.alerts.map((a) => a.name), ['SourceError'])
  await assert.rejects(e.runCycle({ at: T0, raiseOnFailure: true }), (err) => {
    assert.ok(err instanceof tripline.SourceError && err instanceof Error)
    assert.equal(err.code, 'ERR_TRIPLINE_SOURCE')
    assert.match(err.message, /queue/)
    assert.equal(err.report.sourceFailures.length, 1)
    return true
  })
})

test('a JS receiver gets each notification; async receivers are awaited', async () => {
  const got = []
  const e = depthEngine({
    inbox: (n) => got.push(n),
    slow: async (n) => { await new Promise((r) => setTimeout(r, 1)); got.push({ slow: n.receiver }) },
  })
  assert.deepEqual(e.receivers.sort(), ['inbox', 'slow'])
  e.pushSeries('depth', 250, T0)
  const r = await e.runCycle({ at: T0 })
  assert.equal(r.delivered.length, 2)
  assert.deepEqual(r.deliveryErrors, [])
  const n = got.find((x) => x.receiver === 'inbox')
  assert.deepEqual([n.status, n.createdAt.getTime()], ['firing', T0.getTime()])
  assert.deepEqual(n.groupLabels, { alertname: 'email-depth', queue: 'emails', team: 'mail' })
  assert.deepEqual(n.alerts.map((a) => a.summary), ['depth 250'])
  assert.ok(got.some((x) => x.slow === 'slow'))
})

test('a receiver that throws or rejects is retried until it delivers', async () => {
  const calls = []
  const e = depthEngine()
  e.addReceiver('flaky', (n) => {
    calls.push(n.id)
    if (calls.length === 1) throw new Error('chat service is down')
  })
  e.addReceiver('rejects', async () => { if (calls.length < 2) throw new Error('later') })
  e.pushSeries('depth', 250, T0)
  const r = await e.runCycle({ at: T0 })
  const failed = r.deliveryErrors.map((f) => f.name).sort()
  assert.deepEqual(failed, ['flaky', 'rejects'])
  assert.match(r.deliveryErrors.find((f) => f.name === 'flaky').message, /chat service is down/)
  const delivered = await e.deliver(minutes(10))
  assert.equal(delivered.length, 2)
  assert.deepEqual(calls, [calls[0], calls[0]])
})

test('receivers are added before the first cycle only', async () => {
  const e = depthEngine()
  e.addReceiver('a', () => {})
  assert.throws(() => e.addReceiver('a', () => {}), tripline.ConfigError)
  await e.runCycle({ at: T0 })
  assert.throws(() => e.addReceiver('late', () => {}), (err) => err instanceof tripline.TriplineError && /before the first cycle/.test(err.message))
})

test('a JS receiver can be routed to by name next to configured ones', async () => {
  const dir = tmp()
  fs.writeFileSync(path.join(dir, 'depth.rhai'), DEPTH_RULE)
  fs.writeFileSync(
    path.join(dir, 't.toml'),
    'rules_dirs = ["."]\nstock_rules = false\n[route]\nreceiver = "console"\ngroup_wait = "0s"\n  [[route.routes]]\n  matchers = ["queue=emails"]\n  receiver = "js"\n[[receiver]]\ntype = "console"\nname = "console"\n[[rule]]\nname = "d"\nuse = "host/depth"\n',
  )
  const got = []
  const e = Engine.fromConfig(path.join(dir, 't.toml'), {}, { js: (n) => got.push(n.receiver) })
  e.pushSeries('depth', 250, T0)
  await e.runCycle({ at: T0 })
  assert.deepEqual(got, ['js'])
})

test('a silence mutes matching alerts until it is expired', async () => {
  const got = []
  const e = depthEngine({ inbox: (n) => got.push(n.status) })
  const id = e.addSilence({ matchers: ['queue=emails'], startsAt: T0, duration: '2h', createdBy: 'ops', comment: 'deploy' })
  const [s] = e.silences(true)
  assert.deepEqual([s.id, s.matchers, s.createdBy, s.comment], [id, ['queue="emails"'], 'ops', 'deploy'])
  assert.equal(s.endsAt.getTime() - s.startsAt.getTime(), 2 * 3600_000)
  e.pushSeries('depth', 250, T0)
  assert.equal((await e.runCycle({ at: T0 })).firing.length, 1)
  assert.deepEqual(got, [])
  const later = minutes(1)
  assert.equal(e.expireSilence(id, later), true)
  assert.equal(e.expireSilence(id, later), false)
  assert.equal(e.expireSilence('nope'), false)
  assert.deepEqual([e.silences(false, later).length, e.silences(true, later).length], [0, 1])
  await e.runCycle({ at: later })
  assert.deepEqual(got, ['firing'])
  assert.throws(() => e.addSilence({ matchers: ['queue=emails'], endsAt: new Date(Date.now() - 60_000) }), /already passed/)
  assert.throws(() => e.addSilence({ matchers: ['queue=~('] }), tripline.InvalidArgument)
})

test('an ack tells the receivers; an unknown alert is refused', async () => {
  const got = []
  const e = depthEngine({ inbox: (n) => got.push([n.status, n.acknowledgedBy ?? null]) })
  e.pushSeries('depth', 250, T0)
  const [a] = (await e.runCycle({ at: T0 })).alerts
  assert.deepEqual(await e.ack(a.fingerprint, 'alice', minutes(1)), ['inbox'])
  assert.deepEqual(got, [['firing', null], ['acknowledged', 'alice']])
  await assert.rejects(e.ack('0000', 'alice'), (err) => err instanceof tripline.TriplineError && err.code === 'ERR_TRIPLINE_STATE')
})

test('testRules runs the fixture cases like the CLI', () => {
  const cases = tripline.testRules([path.join(REPO, 'rules', 'worker')])
  assert.ok(cases.length > 10)
  assert.deepEqual(cases.filter((c) => c.failure), [])
  assert.ok(cases.every((c) => c.rule.startsWith('worker/')))
})
