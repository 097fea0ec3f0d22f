// Evaluates a batch of IAM requests with @cloud-copilot/iam-simulate (pinned in package.json).
// Called by sandbox/iam_replay.py: a JSON list of simulations on stdin, a JSON list of results
// on stdout, in the same order. Strict mode: the request's context keys are taken as given.
import { runSimulation } from "@cloud-copilot/iam-simulate";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const simulations = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const results = [];
for (const item of simulations) {
  const simulation = {
    request: {
      principal: item.principal,
      action: item.action,
      resource: { resource: item.resource, accountId: item.accountId },
      contextVariables: item.context,
    },
    identityPolicies: item.identityPolicies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: item.resourcePolicy ?? undefined,
  };
  const outcome = await runSimulation(simulation, { simulationMode: "Strict" });
  if (outcome.resultType === "error") {
    results.push({ result: "Error", errors: outcome.errors });
  } else if (outcome.resultType === "single") {
    results.push({
      result: outcome.overallResult,
      ignoredContextKeys: outcome.result.ignoredContextKeys ?? [],
      resourceType: outcome.result.resourceType ?? null,
    });
  } else {
    results.push({
      result: outcome.overallResult,
      ignoredContextKeys: outcome.results.flatMap((r) => r.ignoredContextKeys ?? []),
      resourceType: outcome.results.map((r) => r.resourceType).join(",") || null,
    });
  }
}
process.stdout.write(JSON.stringify(results));
