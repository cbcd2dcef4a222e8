// The synthesized templates' policies, judged by an IAM evaluator nobody
// here wrote (@cloud-copilot/iam-simulate): infra's TestPoliciesAgreeWithIAMSimulate
// runs it as `node iam-simulate-check.mjs <dir>` over <dir>/default.json (the
// test config) and <dir>/edge.json (prefix, user path, secret ARNs, KMS keys),
// both synthesized in ap-northeast-1 and resolved here as deployed to
// eu-west-1: every grant must follow the deploy's region.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { runSimulation } from '@cloud-copilot/iam-simulate'

const dir = process.argv[2]

const ACCOUNT = '111122223333', REGION = 'eu-west-1' // not the synth's ap-northeast-1: the deploy's
function load(name) {
  const t = JSON.parse(readFileSync(join(dir, name + '.json')))
  const R = t.Resources
  const refOf = (id) => {
    const r = R[id]
    switch (r.Type) {
      case 'AWS::SNS::Topic': return `arn:aws:sns:${REGION}:${ACCOUNT}:${id}`
      case 'AWS::StepFunctions::StateMachine': return `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${r.Properties.StateMachineName}`
      case 'AWS::SecretsManager::Secret': return `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${r.Properties.Name}-AbCdEf`
      case 'AWS::KMS::Key': return `key-${id}`
      default: return id
    }
  }
  const getAtt = (id, a) => {
    const r = R[id]
    if (r.Type === 'AWS::IAM::Role') return `arn:aws:iam::${ACCOUNT}:role/${id}`
    if (r.Type === 'AWS::CloudWatch::Alarm') return `arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:${id}`
    if (r.Type === 'AWS::Lambda::Function') return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${id}`
    if (r.Type === 'AWS::KMS::Key') return `arn:aws:kms:${REGION}:${ACCOUNT}:key/${id}`
    if (r.Type === 'AWS::Logs::LogGroup') return `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${id}:*`
    if (r.Type === 'AWS::SQS::Queue') return `arn:aws:sqs:${REGION}:${ACCOUNT}:${id}`
    return `${id}.${a}`
  }
  const res = (v) => {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v
    if (Array.isArray(v)) return v.map(res)
    if (v.Ref) return ({ 'AWS::Region': REGION, 'AWS::Partition': 'aws', 'AWS::AccountId': ACCOUNT, 'AWS::URLSuffix': 'amazonaws.com' })[v.Ref] ?? refOf(v.Ref)
    if (v['Fn::GetAtt']) return getAtt(...v['Fn::GetAtt'])
    if (v['Fn::Join']) return res(v['Fn::Join'][1]).join(v['Fn::Join'][0])
    const o = {}; for (const k of Object.keys(v)) o[k] = res(v[k]); return o
  }
  return { R, res }
}
function rolePolicies(t, fnDescription) {
  const fnId = Object.keys(t.R).find((id) => t.R[id].Type === 'AWS::Lambda::Function' && t.R[id].Properties.Description === fnDescription)
  const roleId = t.R[fnId].Properties.Role['Fn::GetAtt'][0]
  return Object.entries(t.R).filter(([, r]) => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((x) => x.Ref === roleId))
    .map(([id, r]) => ({ name: id, policy: t.res(r.Properties.PolicyDocument) }))
}
function managed(t, idPart) {
  const [id, r] = Object.entries(t.R).find(([id, r]) => r.Type === 'AWS::IAM::ManagedPolicy' && id.includes(idPart))
  return [{ name: id, policy: t.res(r.Properties.PolicyDocument) }]
}
let failed = 0
async function expect(what, want, sim) {
  const s = { serviceControlPolicies: [], resourceControlPolicies: [], identityPolicies: [], ...sim }
  s.request.contextVariables ??= {}
  const out = await runSimulation(s, {})
  const got = out.errors ? 'Error ' + JSON.stringify(out.errors).slice(0, 400) : out.resultType === 'single' ? out.result.analysis.result : JSON.stringify(out).slice(0, 300)
  const ok = got === want
  if (!ok) failed++
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}: ${got}${ok ? '' : ' (want ' + want + ')'}`)
}
const role = `arn:aws:iam::${ACCOUNT}:role/x`
const d = load('default'), e = load('edge')

// 1. The alarms may publish to the topic: the topic policy, CloudWatch as the caller.
const topicPolicy = d.res(Object.values(d.R).find((r) => r.Type === 'AWS::SNS::TopicPolicy').Properties.PolicyDocument)
const topicId = Object.keys(d.R).find((id) => d.R[id].Type === 'AWS::SNS::Topic')
const alarm = Object.keys(d.R).find((id) => d.R[id].Type === 'AWS::CloudWatch::Alarm')
for (const [what, want, arn, acct] of [
  ['cloudwatch publishes for our alarm', 'Allowed', `arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:${alarm}`, ACCOUNT],
  ['cloudwatch publishes for another alarm of the account', 'ImplicitlyDenied', `arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:other`, ACCOUNT],
  ['cloudwatch publishes for an alarm of another account', 'ImplicitlyDenied', `arn:aws:cloudwatch:${REGION}:444455556666:alarm:${alarm}`, '444455556666'],
]) await expect(what, want, { request: { principal: 'cloudwatch.amazonaws.com', action: 'sns:Publish', resource: { resource: `arn:aws:sns:${REGION}:${ACCOUNT}:${topicId}`, accountId: ACCOUNT }, contextVariables: { 'aws:SourceArn': arn, 'aws:SourceAccount': acct, 'aws:SecureTransport': 'true' } }, resourcePolicy: topicPolicy })

// 2. Operator and rollback.
const user = (n) => ({ resource: `arn:aws:iam::${ACCOUNT}:user/${n}`, accountId: ACCOUNT })
const rec = (n) => ({ resource: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:keyrotator/users/${n}-AbCdEf`, accountId: ACCOUNT })
await expect('operator iam:GetUser', 'Allowed', { request: { principal: role, action: 'iam:GetUser', resource: user('app-aws-user') }, identityPolicies: managed(d, 'OperatorPolicy') })
await expect('operator iam:UpdateAccessKey', 'ImplicitlyDenied', { request: { principal: role, action: 'iam:UpdateAccessKey', resource: user('app-aws-user') }, identityPolicies: managed(d, 'OperatorPolicy') })
await expect('operator DescribeSecret on a record', 'Allowed', { request: { principal: role, action: 'secretsmanager:DescribeSecret', resource: rec('app-aws-user') }, identityPolicies: managed(d, 'OperatorPolicy') })
await expect('operator GetSecretValue on a record', 'ImplicitlyDenied', { request: { principal: role, action: 'secretsmanager:GetSecretValue', resource: rec('app-aws-user') }, identityPolicies: managed(d, 'OperatorPolicy') })
await expect('operator cloudtrail:LookupEvents', 'Allowed', { request: { principal: role, action: 'cloudtrail:LookupEvents', resource: { resource: '*', accountId: ACCOUNT } }, identityPolicies: managed(d, 'OperatorPolicy') })
await expect('rollback iam:UpdateAccessKey', 'Allowed', { request: { principal: role, action: 'iam:UpdateAccessKey', resource: user('app-aws-user') }, identityPolicies: managed(d, 'RollbackPolicy') })
await expect('rollback iam:UpdateAccessKey on an unmanaged user', 'ImplicitlyDenied', { request: { principal: role, action: 'iam:UpdateAccessKey', resource: user('someone') }, identityPolicies: managed(d, 'RollbackPolicy') })
await expect('rollback StopExecution', 'Allowed', { request: { principal: role, action: 'states:StopExecution', resource: { resource: `arn:aws:states:${REGION}:${ACCOUNT}:execution:keyrotator:run-1`, accountId: ACCOUNT } }, identityPolicies: managed(d, 'RollbackPolicy') })

// 3. Function grants in the deploy's region.
const us = rolePolicies(d, 'keyrotator: the updatesecret task')
await expect('updatesecret GetSecretValue on a record (eu-west-1)', 'Allowed', { request: { principal: role, action: 'secretsmanager:GetSecretValue', resource: rec('app-aws-user') }, identityPolicies: us })
await expect('updatesecret DescribeSecret on a record', 'ImplicitlyDenied', { request: { principal: role, action: 'secretsmanager:DescribeSecret', resource: rec('app-aws-user') }, identityPolicies: us })
await expect('createkey UpdateSecretVersionStage', 'ImplicitlyDenied', { request: { principal: role, action: 'secretsmanager:UpdateSecretVersionStage', resource: rec('app-aws-user') }, identityPolicies: rolePolicies(d, 'keyrotator: the createkey task') })
await expect('promote UpdateSecretVersionStage', 'Allowed', { request: { principal: role, action: 'secretsmanager:UpdateSecretVersionStage', resource: rec('app-aws-user') }, identityPolicies: rolePolicies(d, 'keyrotator: the promote task') })
await expect('promote PutSecretValue', 'ImplicitlyDenied', { request: { principal: role, action: 'secretsmanager:PutSecretValue', resource: rec('app-aws-user') }, identityPolicies: rolePolicies(d, 'keyrotator: the promote task') })

// 4. Edge config: ARNs, paths, keys, prefix.
const eus = rolePolicies(e, 'keyrotator: the updatesecret task')
const sec = (r, n) => ({ resource: `arn:aws:secretsmanager:${r}:${ACCOUNT}:secret:${n}`, accountId: ACCOUNT })
await expect('PutSecretValue on the full ARN', 'Allowed', { request: { principal: role, action: 'secretsmanager:PutSecretValue', resource: sec('ap-northeast-1', 'app/full-AbCdEf') }, identityPolicies: eus })
await expect('PutSecretValue on another secret of that name', 'ImplicitlyDenied', { request: { principal: role, action: 'secretsmanager:PutSecretValue', resource: sec('ap-northeast-1', 'app/full-XyZ123') }, identityPolicies: eus })
await expect('PutSecretValue on the partial ARN\'s secret', 'Allowed', { request: { principal: role, action: 'secretsmanager:PutSecretValue', resource: sec('ap-northeast-1', 'app/partial-Qw3rTy') }, identityPolicies: eus })
await expect('PutSecretValue on a named secret in the deploy\'s region', 'Allowed', { request: { principal: role, action: 'secretsmanager:PutSecretValue', resource: sec(REGION, 'app/cmk-Qw3rTy') }, identityPolicies: eus })
await expect('GetSecretValue on kr2\'s record', 'Allowed', { request: { principal: role, action: 'secretsmanager:GetSecretValue', resource: sec(REGION, 'kr2/users/svc-app-AbCdEf') }, identityPolicies: eus })
await expect('GetSecretValue on keyrotator\'s record', 'ImplicitlyDenied', { request: { principal: role, action: 'secretsmanager:GetSecretValue', resource: sec(REGION, 'keyrotator/users/svc-app-AbCdEf') }, identityPolicies: eus })
const key = (id) => ({ resource: `arn:aws:kms:ap-northeast-1:${ACCOUNT}:key/${id}`, accountId: ACCOUNT })
// The key's default key policy: it delegates to the account's IAM policies.
const keyPolicy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' }] }
const via = { 'kms:ViaService': `secretsmanager.${REGION}.amazonaws.com` }
await expect('kms:Decrypt on the key, through Secrets Manager', 'Allowed', { request: { principal: role, action: 'kms:Decrypt', resource: key('1234abcd-12ab-34cd-56ef-1234567890ab'), contextVariables: via }, identityPolicies: eus, resourcePolicy: keyPolicy })
await expect('kms:Decrypt on the key, directly', 'ImplicitlyDenied', { request: { principal: role, action: 'kms:Decrypt', resource: key('1234abcd-12ab-34cd-56ef-1234567890ab'), contextVariables: {} }, identityPolicies: eus, resourcePolicy: keyPolicy })
await expect('kms:GenerateDataKey on the alias\'s key, through Secrets Manager', 'Allowed', { request: { principal: role, action: 'kms:GenerateDataKey', resource: key('9999abcd-12ab-34cd-56ef-1234567890ab'), contextVariables: { ...via, 'kms:ResourceAliases': ['alias/app-secrets'] } }, identityPolicies: eus, resourcePolicy: keyPolicy })
await expect('kms:GenerateDataKey on a key without that alias', 'ImplicitlyDenied', { request: { principal: role, action: 'kms:GenerateDataKey', resource: key('9999abcd-12ab-34cd-56ef-1234567890ab'), contextVariables: { ...via, 'kms:ResourceAliases': ['alias/other'] } }, identityPolicies: eus, resourcePolicy: keyPolicy })
const ev = rolePolicies(e, 'keyrotator: the validate task')
await expect('validate GetUser on the user with its path', 'Allowed', { request: { principal: role, action: 'iam:GetUser', resource: user('service/app/svc-app') }, identityPolicies: ev })
await expect('validate GetUser on user/<name> without the path', 'ImplicitlyDenied', { request: { principal: role, action: 'iam:GetUser', resource: user('svc-app') }, identityPolicies: ev })
await expect('validate DescribeExecution of kr2', 'Allowed', { request: { principal: role, action: 'states:DescribeExecution', resource: { resource: `arn:aws:states:${REGION}:${ACCOUNT}:execution:kr2:run-1`, accountId: ACCOUNT } }, identityPolicies: ev })
await expect('validate DescribeExecution of keyrotator', 'ImplicitlyDenied', { request: { principal: role, action: 'states:DescribeExecution', resource: { resource: `arn:aws:states:${REGION}:${ACCOUNT}:execution:keyrotator:run-1`, accountId: ACCOUNT } }, identityPolicies: ev })
console.log(failed ? `${failed} FAILED` : 'all agree')
process.exit(failed ? 1 : 0)
