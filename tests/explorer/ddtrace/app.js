// A small Node.js service under Datadog's own profiler (dd-trace, loaded
// with -r dd-trace/init by run.sh): a CPU-bound function, an allocating
// one and a timer-driven idle part, so the wall, cpu and space profiles
// each have something to show. Runs until run.sh's test has what it needs
// (it kills this process by pid), or RUN_SECONDS at most.
'use strict'

function fibonacciBusyLoop (n) {
  return n < 2 ? n : fibonacciBusyLoop(n - 1) + fibonacciBusyLoop(n - 2)
}

const kept = []
function allocateBuffers () {
  for (let i = 0; i < 200; i++) kept.push({ text: 'x'.repeat(256) + i, list: new Array(64).fill(i) })
  if (kept.length > 20000) kept.splice(0, 10000)
}

const deadline = Date.now() + 1000 * Number(process.env.RUN_SECONDS || 60)
function tick () {
  fibonacciBusyLoop(27)
  allocateBuffers()
  if (Date.now() < deadline) setTimeout(tick, 5)
}
tick()
process.stdout.write('ready\n')
