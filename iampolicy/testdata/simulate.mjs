// simulate.mjs: the referee of the iampolicy differential test. It reads a
// JSON array of simulations (the shape of @cloud-copilot/iam-simulate's
// Simulation) on stdin and prints, as one JSON array, iam-simulate's
// overall result for each: "Allowed", "ExplicitlyDenied", "ImplicitlyDenied",
// or an error with its message. One process answers every case of a run.
import { runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const cases = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const out = []
for (const c of cases) {
  const simulation = {
    request: c.request,
    identityPolicies: c.identityPolicies ?? [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: c.resourcePolicy ?? undefined,
    sessionPolicy: c.sessionPolicy ?? undefined
  }
  try {
    const res = await runSimulation(simulation, { simulationMode: 'Strict' })
    if (res.resultType === 'error') {
      out.push({ result: 'error', error: JSON.stringify(res.errors) })
    } else {
      out.push({ result: res.overallResult })
    }
  } catch (err) {
    out.push({ result: 'error', error: String(err?.stack ?? err) })
  }
}
process.stdout.write(JSON.stringify(out))
