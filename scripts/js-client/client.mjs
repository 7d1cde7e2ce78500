// Sluice through the AWS SDK for JavaScript v3 (@aws-sdk/client-codepipeline): every operation of
// the CodePipeline client on its happy path, and modelled errors of every operation family decoded
// into the SDK's typed exception classes. Checks are written as AWS behaves; where Sluice answers
// otherwise the check fails (the sources for AWS's behaviour are named next to the checks).
//
// Run it through scripts/js-client.sh, which starts a fresh server. By hand:
//   SLUICE_ENDPOINT=http://127.0.0.1:4566 node scripts/js-client/client.mjs
// against a server with an empty data directory. Prints one line per check and ends with
// "N passed, M failed"; exits 1 when a check failed.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as cp from '@aws-sdk/client-codepipeline';

const endpoint = process.env.SLUICE_ENDPOINT;
if (!endpoint) {
  console.error('client.mjs: set SLUICE_ENDPOINT to the server, e.g. http://127.0.0.1:4566');
  process.exit(2);
}
const account = process.env.SLUICE_ACCOUNT_ID ?? '000000000000';
const region = 'us-east-1';
const arnPrefix = `arn:aws:codepipeline:${region}:${account}`;

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // the SDK's notice about Node 22
const client = new cp.CodePipelineClient({
  endpoint,
  region,
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'js-client',
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'js-client',
  },
});

// ---------------------------------------------------------------------------------------------
// Operations Sluice does not answer yet (none now), each with a function that makes a well-formed
// request. Each must answer NotImplementedException, HTTP 501, and must not be retried by the SDK.
// When Sluice implements one, delete its entry here and give it a happy-path check below; the
// coverage check at the end then insists that it succeeded.
const NOT_IMPLEMENTED_YET = {};
// ---------------------------------------------------------------------------------------------

// The harness: each check prints one line; a failed one says why on the same line.
let passed = 0;
let failed = 0;
async function check(title, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${title}`);
  } catch (err) {
    failed++;
    const why = err instanceof assert.AssertionError || err?.name === 'Error' ? err.message : `${err?.name}: ${err?.message ?? err}`;
    console.log(`FAIL ${title}: ${why.replace(/\s*\n\s*/g, ' | ')}`);
  }
}

// Operations that answered successfully at least once.
const succeeded = new Set();
async function call(operation, input) {
  const Command = cp[`${operation}Command`];
  assert.ok(Command, `the SDK has no ${operation}Command`);
  const out = await client.send(new Command(input));
  succeeded.add(operation);
  return out;
}

// expectError runs an operation that must fail with the modelled error Class (decoded by the SDK
// into that class), HTTP status and, when given, AWS's exact message.
async function expectError(operation, input, Class, { status = 400, message, includes } = {}) {
  let out;
  try {
    out = await call(operation, input);
  } catch (err) {
    assert.ok(err instanceof Class, `want ${Class.name}, got ${err.name} (HTTP ${err.$metadata?.httpStatusCode}): ${err.message}`);
    assert.ok(err instanceof cp.CodePipelineServiceException, `${err.name} is not a CodePipelineServiceException`);
    assert.equal(err.name, Class.name);
    assert.equal(err.$fault, 'client');
    assert.equal(err.$metadata.httpStatusCode, status, `HTTP status of ${err.name}`);
    assert.ok(err.$metadata.requestId, 'the error carries a request id');
    if (message !== undefined && err.message !== message) throw new Error(`message ${JSON.stringify(err.message)}, want AWS's ${JSON.stringify(message)}`);
    for (const fragment of [includes ?? []].flat()) assert.ok(err.message.includes(fragment), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(fragment)}`);
    return err;
  }
  throw new Error(`${operation} succeeded (${JSON.stringify(out).slice(0, 200)}), want ${Class.name}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function waitFor(what, fn, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await fn();
    if (got) return got;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}
const validation = (value, member, constraint) =>
  `1 validation error detected: Value '${value}' at '${member}' failed to satisfy constraint: ${constraint}`;

// ----- the resources the checks share ------------------------------------------------------------

const role = `arn:aws:iam::${account}:role/sluice-js-client`;
const store = { type: 'S3', location: 'sluice-js-client-artifacts' };
const typeId = (category, owner, provider) => ({ category, owner, provider, version: '1' });
const sourceType = typeId('Source', 'Custom', 'JsSource');
const buildType = typeId('Build', 'Custom', 'JsBuild');
const alexaType = typeId('Deploy', 'ThirdParty', 'AlexaSkillsKit');
const manualType = typeId('Approval', 'AWS', 'Manual');

const source = (repo) => ({
  name: 'Src', actionTypeId: sourceType, namespace: 'SrcVars',
  configuration: { Repo: repo, Token: 'source-secret' }, outputArtifacts: [{ name: 'code' }],
});
const approval = (name, data) => ({ name, actionTypeId: manualType, configuration: { CustomData: data } });
const alexa = (name) => ({
  name, actionTypeId: alexaType, inputArtifacts: [{ name: 'code' }],
  configuration: { ClientId: 'amzn1.application-oa2-client.js', ClientSecret: 'alexa-secret', RefreshToken: 'alexa-refresh', SkillId: `amzn1.ask.skill.${name}` },
});

// js-v1: custom source → custom build → manual approval → two third-party (Alexa) deploys.
const v1 = {
  name: 'js-v1', roleArn: role, artifactStore: store,
  stages: [
    { name: 'Source', actions: [source('v1-repo')] },
    { name: 'Build', actions: [{ name: 'Build', actionTypeId: buildType, inputArtifacts: [{ name: 'code' }], configuration: { Project: 'v1', Commit: '#{SrcVars.CommitId}' } }] },
    { name: 'Approve', actions: [approval('Approve', 'Ship js-v1?')] },
    { name: 'Deploy', actions: [alexa('AlexaA'), alexa('AlexaB')] },
  ],
};
// js-v2: a V2 pipeline in QUEUED mode with a pipeline variable: custom source → manual approval.
const v2 = {
  name: 'js-v2', roleArn: role, artifactStore: store, pipelineType: 'V2', executionMode: 'QUEUED',
  variables: [{ name: 'Env', defaultValue: 'staging', description: 'where to deploy' }],
  stages: [
    { name: 'Source', actions: [source('v2-repo')] },
    { name: 'Gate', actions: [approval('Approve', 'Release #{variables.Env}?')] },
  ],
};
// js-github: a GitHub (version 1) source, for webhooks.
const github = {
  name: 'js-github', roleArn: role, artifactStore: store,
  stages: [
    { name: 'Source', actions: [{ name: 'Source', actionTypeId: typeId('Source', 'ThirdParty', 'GitHub'), outputArtifacts: [{ name: 'code' }],
      configuration: { Owner: 'octo', Repo: 'app', Branch: 'main', OAuthToken: 'github-token', PollForSourceChanges: 'false' } }] },
    { name: 'Approve', actions: [approval('Approve', 'webhook target')] },
  ],
};

// AWS fills these in on every action it returns.
const withDefaults = (p) => ({
  ...p,
  stages: p.stages.map((s) => ({ ...s, actions: s.actions.map((a) => ({ runOrder: 1, configuration: {}, inputArtifacts: [], outputArtifacts: [], ...a })) })),
});
// Secret configuration properties read back as ****.
const masked = (p) => JSON.parse(JSON.stringify(p).replace(/"(source-secret|alexa-secret|alexa-refresh|github-token)"/g, '"****"'));

const state = {};
const stageState = (pipelineState, name) => pipelineState.stageStates.find((s) => s.stageName === name);
const actionState = (pipelineState, stage, action) => stageState(pipelineState, stage)?.actionStates.find((a) => a.actionName === action);
const execution = async (pipelineName, pipelineExecutionId) =>
  (await call('GetPipelineExecution', { pipelineName, pipelineExecutionId })).pipelineExecution;
const waitStatus = (pipelineName, id, status) =>
  waitFor(`execution ${id} of ${pipelineName} to be ${status}`, async () => (await execution(pipelineName, id)).status === status);
const pollJob = (actionTypeId, queryParam) =>
  waitFor(`a job of ${actionTypeId.provider} (${JSON.stringify(queryParam)})`, async () =>
    (await call('PollForJobs', { actionTypeId, maxBatchSize: 1, queryParam })).jobs[0]);
const approvalToken = (pipelineName, stage) =>
  waitFor(`the approval token of ${pipelineName}/${stage}`, async () => {
    const s = await call('GetPipelineState', { name: pipelineName });
    const latest = actionState(s, stage, 'Approve')?.latestExecution;
    return latest?.status === 'InProgress' && latest.token ? latest.token : undefined;
  });

// ===== action types ===============================================================================

await check('CreateCustomActionType: a Source type with a queryable and a secret property, tagged', async () => {
  const out = await call('CreateCustomActionType', {
    category: 'Source', provider: 'JsSource', version: '1',
    settings: { entityUrlTemplate: 'https://example.com/{Config:Repo}', executionUrlTemplate: 'https://example.com/run/{ExternalExecutionId}' },
    configurationProperties: [
      { name: 'Repo', required: true, key: true, secret: false, queryable: true, type: 'String', description: 'repository' },
      { name: 'Token', required: false, key: false, secret: true, type: 'String' },
    ],
    inputArtifactDetails: { minimumCount: 0, maximumCount: 0 },
    outputArtifactDetails: { minimumCount: 1, maximumCount: 1 },
    tags: [{ key: 'team', value: 'js' }],
  });
  assert.deepEqual(out.actionType.id, sourceType);
  assert.equal(out.actionType.settings.entityUrlTemplate, 'https://example.com/{Config:Repo}');
  assert.deepEqual(out.actionType.actionConfigurationProperties.map((p) => [p.name, p.required, p.key, p.secret]), [['Repo', true, true, false], ['Token', false, false, true]]);
  assert.deepEqual(out.actionType.outputArtifactDetails, { minimumCount: 1, maximumCount: 1 });
  assert.deepEqual(out.tags, [{ key: 'team', value: 'js' }]);
});

await check('CreateCustomActionType: a Build type; and a Test type that DeleteCustomActionType removes', async () => {
  await call('CreateCustomActionType', {
    category: 'Build', provider: 'JsBuild', version: '1',
    configurationProperties: [
      { name: 'Project', required: true, key: true, secret: false, queryable: true },
      { name: 'Commit', required: false, key: false, secret: false },
    ],
    inputArtifactDetails: { minimumCount: 1, maximumCount: 1 },
    outputArtifactDetails: { minimumCount: 0, maximumCount: 1 },
  });
  const temp = { category: 'Test', provider: 'JsTemp', version: '1' };
  await call('CreateCustomActionType', { ...temp, inputArtifactDetails: { minimumCount: 0, maximumCount: 1 }, outputArtifactDetails: { minimumCount: 0, maximumCount: 0 } });
  await call('DeleteCustomActionType', temp);
  const custom = (await call('ListActionTypes', { actionOwnerFilter: 'Custom' })).actionTypes.map((t) => t.id.provider).sort();
  assert.deepEqual(custom, ['JsBuild', 'JsSource']);
});

await check('ListActionTypes: without a filter lists AWS, ThirdParty and Custom types', async () => {
  const ids = [];
  let nextToken;
  do {
    const out = await call('ListActionTypes', { nextToken });
    ids.push(...out.actionTypes.map((t) => t.id));
    nextToken = out.nextToken;
  } while (nextToken);
  for (const want of [manualType, alexaType, sourceType, typeId('Build', 'AWS', 'CodeBuild')]) {
    assert.ok(ids.some((id) => JSON.stringify(id) === JSON.stringify(want)), `missing ${JSON.stringify(want)}`);
  }
});

await check('GetActionType and UpdateActionType: a ThirdParty type round-trips with a new description', async () => {
  const { actionType } = await call('GetActionType', { category: 'Deploy', owner: 'ThirdParty', provider: 'AlexaSkillsKit', version: '1' });
  assert.deepEqual(actionType.id, alexaType);
  assert.equal(actionType.executor.type, 'JobWorker');
  assert.deepEqual(actionType.inputArtifactDetails, { minimumCount: 1, maximumCount: 2 });
  assert.deepEqual(actionType.properties.map((p) => [p.name, p.noEcho]), [['ClientId', false], ['ClientSecret', true], ['RefreshToken', true], ['SkillId', false]]);
  await call('UpdateActionType', { actionType: { ...actionType, description: 'Alexa Skills Kit, described by the JS client' } });
  const again = await call('GetActionType', { category: 'Deploy', owner: 'ThirdParty', provider: 'AlexaSkillsKit', version: '1' });
  assert.equal(again.actionType.description, 'Alexa Skills Kit, described by the JS client');
});

await check('ListRuleTypes: the CloudWatchAlarm rule type', async () => {
  const { ruleTypes } = await call('ListRuleTypes', {});
  const alarm = ruleTypes.find((t) => t.id.provider === 'CloudWatchAlarm');
  assert.ok(alarm, 'no CloudWatchAlarm rule type');
  assert.deepEqual(alarm.id, { category: 'Rule', owner: 'AWS', provider: 'CloudWatchAlarm', version: '1' });
  assert.ok(alarm.ruleConfigurationProperties.some((p) => p.name === 'AlarmName' && p.required));
});

await check('action types: GetActionType of a missing type is ActionTypeNotFoundException', async () => {
  await expectError('GetActionType', { category: 'Build', owner: 'ThirdParty', provider: 'JsNope', version: '1' }, cp.ActionTypeNotFoundException, { includes: 'JsNope' });
});

await check('action types: a provider outside its pattern is ValidationException in AWS form', async () => {
  await expectError('CreateCustomActionType', {
    category: 'Build', provider: 'bad provider!', version: '1',
    inputArtifactDetails: { minimumCount: 0, maximumCount: 1 }, outputArtifactDetails: { minimumCount: 0, maximumCount: 1 },
  }, cp.ValidationException, { message: validation('bad provider!', 'provider', 'Member must satisfy regular expression pattern: [0-9A-Za-z_-]+') });
});

await check('action types: ListActionTypes with a foreign nextToken is InvalidNextTokenException', async () => {
  await expectError('ListActionTypes', { nextToken: 'not-a-token-this-server-issued' }, cp.InvalidNextTokenException);
});

// ===== pipelines ==================================================================================

await check('CreatePipeline V1: the declaration comes back with AWS defaults, secrets masked, tags', async () => {
  const out = await call('CreatePipeline', { pipeline: v1, tags: [{ key: 'team', value: 'js' }] });
  assert.deepEqual(out.pipeline, masked(withDefaults({ ...v1, version: 1, pipelineType: 'V1', executionMode: 'SUPERSEDED' })));
  assert.deepEqual(out.tags, [{ key: 'team', value: 'js' }]);
});

await check('CreatePipeline V2: QUEUED, variables', async () => {
  const out = await call('CreatePipeline', { pipeline: v2 });
  assert.deepEqual(out.pipeline, masked(withDefaults({ ...v2, version: 1 })));
});

await check('CreatePipeline: a GitHub (version 1) source, for webhooks', async () => {
  const out = await call('CreatePipeline', { pipeline: github });
  assert.equal(out.pipeline.stages[0].actions[0].configuration.OAuthToken, '****');
});

await check('GetPipeline: the declaration and metadata (ARN, created, updated)', async () => {
  const out = await call('GetPipeline', { name: 'js-v2' });
  assert.deepEqual(out.pipeline, masked(withDefaults({ ...v2, version: 1 })));
  assert.equal(out.metadata.pipelineArn, `${arnPrefix}:js-v2`);
  assert.ok(out.metadata.created instanceof Date && out.metadata.updated instanceof Date, 'created and updated are timestamps');
  assert.equal(out.$metadata.httpStatusCode, 200);
  assert.ok(out.$metadata.requestId, 'x-amzn-RequestId');
});

await check('UpdatePipeline: version 2; GetPipeline still reads version 1', async () => {
  const { pipeline } = await call('GetPipeline', { name: 'js-v1' });
  const changed = structuredClone(pipeline);
  changed.stages[2].actions[0].configuration.CustomData = 'Ship js-v1, version 2?';
  const out = await call('UpdatePipeline', { pipeline: changed });
  assert.equal(out.pipeline.version, 2);
  assert.equal(out.pipeline.stages[3].actions[0].configuration.ClientSecret, '****');
  const first = await call('GetPipeline', { name: 'js-v1', version: 1 });
  assert.equal(first.pipeline.stages[2].actions[0].configuration.CustomData, 'Ship js-v1?');
  assert.equal((await call('GetPipeline', { name: 'js-v1' })).pipeline.version, 2);
});

await check('ListPipelines: pages of one, every pipeline once, with type and mode', async () => {
  const names = [];
  let nextToken;
  do {
    const out = await call('ListPipelines', { maxResults: 1, nextToken });
    assert.ok(out.pipelines.length <= 1);
    names.push(...out.pipelines.map((p) => p.name));
    const v2Summary = out.pipelines.find((p) => p.name === 'js-v2');
    if (v2Summary) assert.deepEqual([v2Summary.pipelineType, v2Summary.executionMode, v2Summary.version], ['V2', 'QUEUED', 1]);
    nextToken = out.nextToken;
  } while (nextToken);
  assert.deepEqual(names, ['js-github', 'js-v1', 'js-v2']);
});

await check('DeletePipeline: a pipeline goes; deleting it again succeeds, as in AWS', async () => {
  await call('CreatePipeline', { pipeline: { ...v2, name: 'js-doomed' } });
  await call('DeletePipeline', { name: 'js-doomed' });
  await call('DeletePipeline', { name: 'js-doomed' });
  await expectError('GetPipeline', { name: 'js-doomed' }, cp.PipelineNotFoundException);
});

// AWS's message: the SDKs' own integration test against AWS (features/codepipeline: "does not have a
// pipeline with name 'fake-pipeline'") and moto's test_get_pipeline_errors.
await check('pipelines: GetPipeline of a missing pipeline is PipelineNotFoundException', async () => {
  await expectError('GetPipeline', { name: 'js-missing' }, cp.PipelineNotFoundException,
    { message: `Account '${account}' does not have a pipeline with name 'js-missing'` });
});

await check('pipelines: GetPipeline of a missing version is PipelineVersionNotFoundException', async () => {
  await expectError('GetPipeline', { name: 'js-v1', version: 99 }, cp.PipelineVersionNotFoundException);
});

// AWS's message: moto's test_create_pipeline_errors.
await check('pipelines: CreatePipeline with a name in use is InvalidStructureException', async () => {
  await expectError('CreatePipeline', { pipeline: v2 }, cp.InvalidStructureException,
    { message: `A pipeline with the name 'js-v2' already exists in account '${account}'` });
});

// AWS's message: moto's test_create_pipeline_errors.
await check('pipelines: CreatePipeline with one stage is InvalidStructureException', async () => {
  await expectError('CreatePipeline', { pipeline: { ...v2, name: 'js-one-stage', stages: [v2.stages[0]] } }, cp.InvalidStructureException,
    { message: 'Pipeline has only 1 stage(s). There should be a minimum of 2 stages in a pipeline' });
});

await check('pipelines: a name outside its pattern is ValidationException in AWS form', async () => {
  await expectError('GetPipeline', { name: 'bad name!' }, cp.ValidationException,
    { message: validation('bad name!', 'name', 'Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+') });
});

// AWS's answer: moto's test_update_pipeline_errors (ResourceNotFoundException, this message).
await check('pipelines: UpdatePipeline of a missing pipeline is ResourceNotFoundException', async () => {
  await expectError('UpdatePipeline', { pipeline: { ...v2, name: 'js-missing' } }, cp.ResourceNotFoundException,
    { message: `The account with id '${account}' does not include a pipeline with the name 'js-missing'` });
});

// ===== jobs (custom actions) and executions of js-v1 ==============================================

await check('ListPipelineExecutions: CreatePipeline started js-v1, trigger CreatePipeline', async () => {
  const { pipelineExecutionSummaries } = await call('ListPipelineExecutions', { pipelineName: 'js-v1' });
  assert.equal(pipelineExecutionSummaries.length, 1);
  const [first] = pipelineExecutionSummaries;
  assert.equal(first.trigger.triggerType, 'CreatePipeline');
  assert.equal(first.status, 'InProgress');
  assert.ok(first.startTime instanceof Date);
  state.v1Exec = first.pipelineExecutionId;
});

await check('PollForJobs: the source job of js-v1, chosen by its queryable property', async () => {
  const job = await pollJob(sourceType, { Repo: 'v1-repo' });
  assert.ok(job.id && job.nonce, 'a job has an id and a nonce');
  assert.equal(job.accountId, account);
  const { data } = job;
  assert.deepEqual(data.actionTypeId, sourceType);
  assert.deepEqual(data.actionConfiguration.configuration, { Repo: 'v1-repo', Token: 'source-secret' }, 'a job worker sees the secret itself');
  assert.equal(data.pipelineContext.pipelineName, 'js-v1');
  assert.equal(data.pipelineContext.stage.name, 'Source');
  assert.equal(data.pipelineContext.action.name, 'Src');
  assert.equal(data.pipelineContext.pipelineExecutionId, state.v1Exec);
  assert.equal(data.pipelineContext.pipelineArn, `${arnPrefix}:js-v1`);
  assert.ok(data.pipelineContext.action.actionExecutionId, 'the action execution id');
  assert.equal(data.outputArtifacts[0].name, 'code');
  assert.equal(data.outputArtifacts[0].location.type, 'S3');
  assert.equal(data.outputArtifacts[0].location.s3Location.bucketName, store.location);
  assert.ok(data.artifactCredentials.accessKeyId && data.artifactCredentials.secretAccessKey, 'artifact credentials');
  state.sourceJob = job;
});

await check('jobs: AcknowledgeJob with a wrong nonce is InvalidNonceException', async () => {
  await expectError('AcknowledgeJob', { jobId: state.sourceJob.id, nonce: 'wrong-nonce' }, cp.InvalidNonceException);
});

await check('AcknowledgeJob and GetJobDetails: the job is InProgress; its details match the poll', async () => {
  const ack = await call('AcknowledgeJob', { jobId: state.sourceJob.id, nonce: state.sourceJob.nonce });
  assert.equal(ack.status, 'InProgress');
  const { jobDetails } = await call('GetJobDetails', { jobId: state.sourceJob.id });
  assert.equal(jobDetails.id, state.sourceJob.id);
  assert.equal(jobDetails.accountId, account);
  assert.deepEqual(jobDetails.data.pipelineContext.stage, state.sourceJob.data.pipelineContext.stage);
});

await check('PutJobSuccessResult: the source succeeds with a revision and an output variable', async () => {
  await call('PutJobSuccessResult', {
    jobId: state.sourceJob.id,
    currentRevision: { revision: 'rev-1', changeIdentifier: 'change-1', revisionSummary: 'first revision' },
    executionDetails: { summary: 'fetched rev-1', externalExecutionId: 'fetch-1', percentComplete: 100 },
    outputVariables: { CommitId: 'abc123' },
  });
});

await check('jobs: PutJobSuccessResult for a finished job is InvalidJobStateException', async () => {
  await expectError('PutJobSuccessResult', { jobId: state.sourceJob.id }, cp.InvalidJobStateException);
});

await check('jobs: GetJobDetails of a missing job is JobNotFoundException', async () => {
  await expectError('GetJobDetails', { jobId: randomUUID() }, cp.JobNotFoundException);
});

await check('jobs: PollForJobs for a type that does not exist is ActionTypeNotFoundException', async () => {
  await expectError('PollForJobs', { actionTypeId: typeId('Build', 'Custom', 'JsNope') }, cp.ActionTypeNotFoundException);
});

await check('PutJobFailureResult: the build job (variables resolved) fails, and so does the execution', async () => {
  const job = await pollJob(buildType, { Project: 'v1' });
  assert.equal(job.data.actionConfiguration.configuration.Commit, 'abc123', '#{SrcVars.CommitId} resolved');
  assert.equal(job.data.inputArtifacts[0].name, 'code');
  assert.equal(job.data.inputArtifacts[0].revision, 'rev-1');
  await call('AcknowledgeJob', { jobId: job.id, nonce: job.nonce });
  await call('PutJobFailureResult', { jobId: job.id, failureDetails: { type: 'JobFailed', message: 'compile error in main.js', externalExecutionId: 'build-1' } });
  await waitStatus('js-v1', state.v1Exec, 'Failed');
});

await check('GetPipelineState: the failed build, its error, the source revision', async () => {
  const s = await call('GetPipelineState', { name: 'js-v1' });
  assert.equal(s.pipelineName, 'js-v1');
  assert.equal(s.pipelineVersion, 2);
  assert.deepEqual(s.stageStates.map((st) => st.stageName), ['Source', 'Build', 'Approve', 'Deploy']);
  assert.equal(stageState(s, 'Source').latestExecution.status, 'Succeeded');
  assert.equal(stageState(s, 'Build').latestExecution.status, 'Failed');
  assert.equal(stageState(s, 'Build').latestExecution.pipelineExecutionId, state.v1Exec);
  const build = actionState(s, 'Build', 'Build').latestExecution;
  assert.equal(build.status, 'Failed');
  assert.equal(build.errorDetails.message, 'compile error in main.js');
  assert.equal(build.externalExecutionId, 'build-1');
  assert.equal(actionState(s, 'Source', 'Src').currentRevision.revisionId, 'rev-1');
  assert.equal(stageState(s, 'Build').inboundTransitionState.enabled, true);
});

await check('RetryStageExecution: FAILED_ACTIONS runs the build again, which succeeds', async () => {
  const out = await call('RetryStageExecution', { pipelineName: 'js-v1', stageName: 'Build', pipelineExecutionId: state.v1Exec, retryMode: 'FAILED_ACTIONS' });
  assert.equal(out.pipelineExecutionId, state.v1Exec);
  const job = await pollJob(buildType, { Project: 'v1' });
  await call('AcknowledgeJob', { jobId: job.id, nonce: job.nonce });
  await call('PutJobSuccessResult', { jobId: job.id, executionDetails: { summary: 'built', percentComplete: 100 } });
});

// ===== approvals ==================================================================================

await check('approvals: PutApprovalResult with a token that is not the action\'s is InvalidApprovalTokenException', async () => {
  await approvalToken('js-v1', 'Approve');
  await expectError('PutApprovalResult', {
    pipelineName: 'js-v1', stageName: 'Approve', actionName: 'Approve', token: randomUUID(), result: { status: 'Approved', summary: 'lgtm' },
  }, cp.InvalidApprovalTokenException);
});

await check('approvals: PutApprovalResult for an action that does not exist is ActionNotFoundException', async () => {
  await expectError('PutApprovalResult', {
    pipelineName: 'js-v1', stageName: 'Approve', actionName: 'Nope', token: randomUUID(), result: { status: 'Approved', summary: 'lgtm' },
  }, cp.ActionNotFoundException);
});

await check('PutApprovalResult: the token from GetPipelineState approves', async () => {
  state.v1Token = await approvalToken('js-v1', 'Approve');
  const out = await call('PutApprovalResult', {
    pipelineName: 'js-v1', stageName: 'Approve', actionName: 'Approve', token: state.v1Token, result: { status: 'Approved', summary: 'lgtm' },
  });
  assert.ok(out.approvedAt instanceof Date, 'approvedAt is a timestamp');
});

await check('approvals: answering the same approval again is ApprovalAlreadyCompletedException', async () => {
  await expectError('PutApprovalResult', {
    pipelineName: 'js-v1', stageName: 'Approve', actionName: 'Approve', token: state.v1Token, result: { status: 'Rejected', summary: 'changed my mind' },
  }, cp.ApprovalAlreadyCompletedException);
});

// ===== third-party jobs ===========================================================================

await check('PollForThirdPartyJobs: both Alexa deploys of js-v1, each with a client id', async () => {
  const jobs = [];
  await waitFor('two third-party jobs', async () => {
    jobs.push(...(await call('PollForThirdPartyJobs', { actionTypeId: alexaType, maxBatchSize: 5 })).jobs);
    return jobs.length >= 2;
  });
  assert.equal(jobs.length, 2);
  for (const j of jobs) assert.ok(j.jobId && j.clientId, 'a third-party job has a job id and a client id');
  state.partnerJobs = jobs;
});

await check('third-party jobs: GetThirdPartyJobDetails with another client token is InvalidClientTokenException', async () => {
  await expectError('GetThirdPartyJobDetails', { jobId: state.partnerJobs[0].jobId, clientToken: randomUUID() }, cp.InvalidClientTokenException);
});

await check('third-party jobs: GetThirdPartyJobDetails of a custom action\'s job is InvalidJobException', async () => {
  await expectError('GetThirdPartyJobDetails', { jobId: state.sourceJob.id, clientToken: state.partnerJobs[0].clientId }, cp.InvalidJobException);
});

await check('third-party jobs: AcknowledgeThirdPartyJob of a missing job is JobNotFoundException', async () => {
  await expectError('AcknowledgeThirdPartyJob', { jobId: randomUUID(), nonce: '1', clientToken: state.partnerJobs[0].clientId }, cp.JobNotFoundException);
});

await check('third-party jobs: PollForThirdPartyJobs for a type that does not exist is ActionTypeNotFoundException', async () => {
  await expectError('PollForThirdPartyJobs', { actionTypeId: typeId('Deploy', 'ThirdParty', 'JsNope') }, cp.ActionTypeNotFoundException);
});

await check('GetThirdPartyJobDetails and AcknowledgeThirdPartyJob: details for the partner, then InProgress', async () => {
  state.partnerDetails = [];
  for (const j of state.partnerJobs) {
    const { jobDetails } = await call('GetThirdPartyJobDetails', { jobId: j.jobId, clientToken: j.clientId });
    assert.equal(jobDetails.id, j.jobId);
    assert.ok(jobDetails.nonce, 'the details carry the nonce to acknowledge with');
    assert.deepEqual(jobDetails.data.actionTypeId, alexaType);
    assert.equal(jobDetails.data.pipelineContext.pipelineName, 'js-v1');
    assert.equal(jobDetails.data.inputArtifacts[0].name, 'code');
    const ack = await call('AcknowledgeThirdPartyJob', { jobId: j.jobId, nonce: jobDetails.nonce, clientToken: j.clientId });
    assert.equal(ack.status, 'InProgress');
    state.partnerDetails.push(jobDetails);
  }
  const skills = state.partnerDetails.map((d) => d.data.actionConfiguration.configuration.SkillId).sort();
  assert.deepEqual(skills, ['amzn1.ask.skill.AlexaA', 'amzn1.ask.skill.AlexaB']);
});

await check('PutThirdPartyJobSuccessResult and PutThirdPartyJobFailureResult: one deploy each; the execution fails', async () => {
  const byAction = Object.fromEntries(state.partnerJobs.map((j, i) => [state.partnerDetails[i].data.pipelineContext.action.name, j]));
  await call('PutThirdPartyJobSuccessResult', { jobId: byAction.AlexaA.jobId, clientToken: byAction.AlexaA.clientId, executionDetails: { summary: 'skill deployed', percentComplete: 100 } });
  await call('PutThirdPartyJobFailureResult', { jobId: byAction.AlexaB.jobId, clientToken: byAction.AlexaB.clientId, failureDetails: { type: 'JobFailed', message: 'skill rejected' } });
  await waitStatus('js-v1', state.v1Exec, 'Failed');
});

await check('GetPipelineExecution and ListPipelineExecutions: the source revision of the execution', async () => {
  const e = await execution('js-v1', state.v1Exec);
  assert.equal(e.status, 'Failed');
  assert.equal(e.pipelineVersion, 1, 'the execution ran version 1, started before the update');
  assert.equal(e.trigger.triggerType, 'CreatePipeline');
  const [rev] = e.artifactRevisions;
  assert.deepEqual([rev.name, rev.revisionId, rev.revisionChangeIdentifier, rev.revisionSummary], ['code', 'rev-1', 'change-1', 'first revision']);
  const { pipelineExecutionSummaries } = await call('ListPipelineExecutions', { pipelineName: 'js-v1' });
  const summary = pipelineExecutionSummaries.find((s) => s.pipelineExecutionId === state.v1Exec);
  assert.equal(summary.status, 'Failed');
  assert.deepEqual(summary.sourceRevisions.map((r) => [r.actionName, r.revisionId]), [['Src', 'rev-1']]);
  assert.ok(summary.lastUpdateTime >= summary.startTime);
});

await check('ListActionExecutions: every run of the execution, with variables and configuration', async () => {
  const details = [];
  let nextToken;
  do {
    const out = await call('ListActionExecutions', { pipelineName: 'js-v1', filter: { pipelineExecutionId: state.v1Exec }, maxResults: 2, nextToken });
    details.push(...out.actionExecutionDetails);
    nextToken = out.nextToken;
  } while (nextToken);
  const runs = details.map((d) => `${d.stageName}/${d.actionName}:${d.status}`).sort();
  assert.deepEqual(runs, ['Approve/Approve:Succeeded', 'Build/Build:Failed', 'Build/Build:Succeeded', 'Deploy/AlexaA:Succeeded', 'Deploy/AlexaB:Failed', 'Source/Src:Succeeded']);
  const src = details.find((d) => d.actionName === 'Src');
  assert.equal(src.pipelineExecutionId, state.v1Exec);
  assert.deepEqual(src.output.outputVariables, { CommitId: 'abc123' });
  assert.equal(src.input.namespace, 'SrcVars');
  const build = details.find((d) => d.actionName === 'Build' && d.status === 'Succeeded');
  assert.equal(build.input.resolvedConfiguration.Commit, 'abc123');
  assert.equal(build.input.configuration.Commit, '#{SrcVars.CommitId}');
  assert.ok(src.startTime instanceof Date && src.lastUpdateTime instanceof Date);
});

await check('PutActionRevision: the revision just run is not new; another one starts an execution', async () => {
  const known = await call('PutActionRevision', {
    pipelineName: 'js-v1', stageName: 'Source', actionName: 'Src', actionRevision: { revisionId: 'rev-1', revisionChangeId: 'change-1', created: new Date('2026-01-01T00:00:00Z') },
  });
  assert.equal(known.newRevision, false);
  assert.equal(known.pipelineExecutionId, state.v1Exec);
  const fresh = await call('PutActionRevision', {
    pipelineName: 'js-v1', stageName: 'Source', actionName: 'Src', actionRevision: { revisionId: 'rev-2', revisionChangeId: 'change-2', created: new Date('2026-01-02T00:00:00Z') },
  });
  assert.equal(fresh.newRevision, true);
  assert.ok(fresh.pipelineExecutionId && fresh.pipelineExecutionId !== state.v1Exec);
  const { pipelineExecutionSummaries } = await call('ListPipelineExecutions', { pipelineName: 'js-v1', maxResults: 1 });
  assert.equal(pipelineExecutionSummaries[0].pipelineExecutionId, fresh.pipelineExecutionId);
  assert.equal(pipelineExecutionSummaries[0].trigger.triggerType, 'PutActionRevision');
});

await check('stages: PutActionRevision naming a missing stage is StageNotFoundException', async () => {
  await expectError('PutActionRevision', {
    pipelineName: 'js-v1', stageName: 'Nope', actionName: 'Src', actionRevision: { revisionId: 'r', revisionChangeId: 'c', created: new Date() },
  }, cp.StageNotFoundException);
});

await check('stages: PutActionRevision naming a missing action is ActionNotFoundException', async () => {
  await expectError('PutActionRevision', {
    pipelineName: 'js-v1', stageName: 'Source', actionName: 'Nope', actionRevision: { revisionId: 'r', revisionChangeId: 'c', created: new Date() },
  }, cp.ActionNotFoundException);
});

// ===== V2: transitions, variables, stop ===========================================================

await check('DisableStageTransition: the V2 execution waits at the Gate once its source succeeds', async () => {
  const { pipelineExecutionSummaries } = await call('ListPipelineExecutions', { pipelineName: 'js-v2' });
  state.v2Exec = pipelineExecutionSummaries[0].pipelineExecutionId;
  await call('DisableStageTransition', { pipelineName: 'js-v2', stageName: 'Gate', transitionType: 'Inbound', reason: 'change freeze' });
  const job = await pollJob(sourceType, { Repo: 'v2-repo' });
  assert.equal(job.data.pipelineContext.pipelineName, 'js-v2');
  await call('AcknowledgeJob', { jobId: job.id, nonce: job.nonce });
  await call('PutJobSuccessResult', { jobId: job.id, currentRevision: { revision: 'v2-rev-1', changeIdentifier: 'c' } });
  const s = await waitFor('the Source stage of js-v2 to succeed', async () => {
    const got = await call('GetPipelineState', { name: 'js-v2' });
    return stageState(got, 'Source').latestExecution?.status === 'Succeeded' ? got : undefined;
  });
  const gate = stageState(s, 'Gate');
  assert.equal(gate.inboundTransitionState.enabled, false);
  assert.equal(gate.inboundTransitionState.disabledReason, 'change freeze');
  assert.ok(gate.inboundTransitionState.lastChangedAt instanceof Date);
  assert.ok(gate.inboundTransitionState.lastChangedBy, 'lastChangedBy names the caller');
  assert.equal(gate.latestExecution, undefined, 'the Gate has not run');
  assert.equal((await execution('js-v2', state.v2Exec)).status, 'InProgress');
});

await check('EnableStageTransition: the execution enters the Gate', async () => {
  await call('EnableStageTransition', { pipelineName: 'js-v2', stageName: 'Gate', transitionType: 'Inbound' });
  state.v2Token = await approvalToken('js-v2', 'Gate');
  const s = await call('GetPipelineState', { name: 'js-v2' });
  assert.equal(stageState(s, 'Gate').inboundTransitionState.enabled, true);
  assert.equal(stageState(s, 'Gate').latestExecution.pipelineExecutionId, state.v2Exec);
});

await check('stages: DisableStageTransition of a missing stage is StageNotFoundException', async () => {
  await expectError('DisableStageTransition', { pipelineName: 'js-v2', stageName: 'Nope', transitionType: 'Inbound', reason: 'x' }, cp.StageNotFoundException);
});

await check('stages: RetryStageExecution of a stage in progress is StageNotRetryableException', async () => {
  await expectError('RetryStageExecution', { pipelineName: 'js-v2', stageName: 'Gate', pipelineExecutionId: state.v2Exec, retryMode: 'FAILED_ACTIONS' }, cp.StageNotRetryableException);
});

await check('StartPipelineExecution: V2 variables, idempotent clientRequestToken', async () => {
  const input = { name: 'js-v2', variables: [{ name: 'Env', value: 'prod' }], clientRequestToken: 'js-client-start-1' };
  const first = await call('StartPipelineExecution', input);
  const again = await call('StartPipelineExecution', input);
  assert.equal(again.pipelineExecutionId, first.pipelineExecutionId);
  state.v2Exec2 = first.pipelineExecutionId;
  const e = await execution('js-v2', state.v2Exec2);
  assert.equal(e.pipelineName, 'js-v2');
  assert.equal(e.pipelineVersion, 1);
  assert.deepEqual(e.variables, [{ name: 'Env', resolvedValue: 'prod' }]);
  assert.equal(e.trigger.triggerType, 'StartPipelineExecution');
  assert.equal(e.executionMode, 'QUEUED');
});

await check('StopPipelineExecution: abandon stops the execution', async () => {
  await pollJob(sourceType, { Repo: 'v2-repo' }); // its source job is out, and never answered
  const out = await call('StopPipelineExecution', { pipelineName: 'js-v2', pipelineExecutionId: state.v2Exec2, abandon: true, reason: 'superseded by a fix' });
  assert.equal(out.pipelineExecutionId, state.v2Exec2);
  await waitStatus('js-v2', state.v2Exec2, 'Stopped');
  const { pipelineExecutionSummaries } = await call('ListPipelineExecutions', { pipelineName: 'js-v2', maxResults: 1 });
  assert.equal(pipelineExecutionSummaries[0].pipelineExecutionId, state.v2Exec2);
  assert.equal(pipelineExecutionSummaries[0].stopTrigger?.reason, 'superseded by a fix');
});

await check('executions: StopPipelineExecution of a stopped execution is PipelineExecutionNotStoppableException', async () => {
  await expectError('StopPipelineExecution', { pipelineName: 'js-v2', pipelineExecutionId: state.v2Exec2, abandon: true }, cp.PipelineExecutionNotStoppableException);
});

await check('PutApprovalResult: Rejected fails the first V2 execution', async () => {
  await call('PutApprovalResult', { pipelineName: 'js-v2', stageName: 'Gate', actionName: 'Approve', token: state.v2Token, result: { status: 'Rejected', summary: 'not today' } });
  await waitStatus('js-v2', state.v2Exec, 'Failed');
  const { pipelineExecutionSummaries } = await call('ListPipelineExecutions', { pipelineName: 'js-v2' });
  assert.deepEqual(pipelineExecutionSummaries.map((e) => [e.pipelineExecutionId, e.status]), [[state.v2Exec2, 'Stopped'], [state.v2Exec, 'Failed']]);
  assert.equal(pipelineExecutionSummaries[1].trigger.triggerType, 'CreatePipeline');
});

await check('executions: GetPipelineExecution of a missing execution is PipelineExecutionNotFoundException', async () => {
  await expectError('GetPipelineExecution', { pipelineName: 'js-v2', pipelineExecutionId: randomUUID() }, cp.PipelineExecutionNotFoundException);
});

await check('executions: StartPipelineExecution of a missing pipeline is PipelineNotFoundException', async () => {
  await expectError('StartPipelineExecution', { name: 'js-missing' }, cp.PipelineNotFoundException, { includes: 'js-missing' });
});

await check('executions: ListPipelineExecutions with a foreign nextToken is InvalidNextTokenException', async () => {
  await expectError('ListPipelineExecutions', { pipelineName: 'js-v2', nextToken: 'not-a-token-this-server-issued' }, cp.InvalidNextTokenException);
});

await check('executions: an execution id outside its pattern is ValidationException in AWS form', async () => {
  await expectError('GetPipelineExecution', { pipelineName: 'js-v2', pipelineExecutionId: 'not-an-id' }, cp.ValidationException, {
    message: validation('not-an-id', 'pipelineExecutionId', 'Member must satisfy regular expression pattern: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'),
  });
});

// ===== V2 release safety: stage conditions, rule runs, overrides, rollbacks, deploy targets =======

// js-safety: an S3 source → a Deploy stage with the built-in S3 deploy. The stage is entered only
// when the pipeline variable Release is 'go' (a VariableCheck rule), and succeeds only once its
// onSuccess condition is met: a DeploymentWindow rule whose window opens in 2099, so it is being
// evaluated until OverrideStageCondition lets the execution past it.
const siteBucket = 'sluice-js-client-site';
const ruleTypeId = (provider) => ({ category: 'Rule', owner: 'AWS', provider, version: '1' });
const safety = {
  name: 'js-safety', roleArn: role, artifactStore: store, pipelineType: 'V2', executionMode: 'QUEUED',
  variables: [{ name: 'Release', defaultValue: 'hold' }],
  stages: [
    { name: 'Source', actions: [{ name: 'Source', actionTypeId: typeId('Source', 'AWS', 'S3'), outputArtifacts: [{ name: 'code' }],
      configuration: { S3Bucket: 'sluice-js-client-source', S3ObjectKey: 'app.zip', PollForSourceChanges: 'false' } }] },
    {
      name: 'Deploy',
      beforeEntry: { conditions: [{ result: 'FAIL', rules: [{ name: 'ReleaseIsGo', ruleTypeId: ruleTypeId('VariableCheck'),
        configuration: { Variable: '#{variables.Release}', Operator: 'EQ', Value: 'go' } }] }] },
      onSuccess: { conditions: [{ result: 'FAIL', rules: [{ name: 'Window2099', ruleTypeId: ruleTypeId('DeploymentWindow'),
        configuration: { Cron: '0 0 0 1 1 ? 2099' } }] }] },
      actions: [{ name: 'Deploy', actionTypeId: typeId('Deploy', 'AWS', 'S3'), inputArtifacts: [{ name: 'code' }],
        configuration: { BucketName: siteBucket, Extract: 'false', ObjectKey: 'release.zip' } }],
    },
  ],
};

// Sluice's built-in S3 endpoint, on the API's port, takes unsigned requests from outside jobs:
// enough to make the buckets and the source object without an S3 client.
async function s3Put(path, body) {
  const res = await fetch(`${endpoint}/${path}`, { method: 'PUT', body });
  assert.ok(res.ok, `S3 PUT /${path}: HTTP ${res.status} ${await res.text()}`);
}
const emptyZip = Buffer.concat([Buffer.from('PK\x05\x06'), Buffer.alloc(18)]);

// startRelease starts an execution with Release=go and waits for it to evaluate the Deploy stage's
// onSuccess condition; it returns the execution's id.
async function startRelease() {
  const { pipelineExecutionId: id } = await call('StartPipelineExecution', { name: 'js-safety', variables: [{ name: 'Release', value: 'go' }] });
  const s = await waitFor(`the onSuccess condition of js-safety/Deploy to be evaluated for ${id}`, async () => {
    const got = await call('GetPipelineState', { name: 'js-safety' });
    const deploy = stageState(got, 'Deploy');
    return deploy.latestExecution?.pipelineExecutionId === id && deploy.onSuccessConditionState?.latestExecution?.status === 'InProgress' ? got : undefined;
  });
  const rule = stageState(s, 'Deploy').onSuccessConditionState.conditionStates[0].ruleStates[0];
  assert.deepEqual([rule.ruleName, rule.latestExecution.status], ['Window2099', 'InProgress']);
  return id;
}
// finishRelease overrides the onSuccess condition an execution evaluates, and waits for it to succeed.
async function finishRelease(id) {
  const out = await call('OverrideStageCondition', { pipelineName: 'js-safety', stageName: 'Deploy', pipelineExecutionId: id, conditionType: 'ON_SUCCESS' });
  assert.equal(out.$metadata.httpStatusCode, 200);
  await waitStatus('js-safety', id, 'Succeeded');
  return id;
}
const deployRun = async (pipelineExecutionId) =>
  (await call('ListActionExecutions', { pipelineName: 'js-safety', filter: { pipelineExecutionId } })).actionExecutionDetails.find((d) => d.actionName === 'Deploy');

await check('CreatePipeline V2 with stage conditions: the first execution (Release=hold) fails at the entry condition', async () => {
  await s3Put('sluice-js-client-source');
  await s3Put('sluice-js-client-source?versioning', '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>');
  await s3Put('sluice-js-client-source/app.zip', emptyZip);
  await s3Put(siteBucket);
  const out = await call('CreatePipeline', { pipeline: safety });
  assert.deepEqual(out.pipeline.stages[1].beforeEntry, safety.stages[1].beforeEntry);
  assert.deepEqual(out.pipeline.stages[1].onSuccess, safety.stages[1].onSuccess);
  state.safetyHeld = (await call('ListPipelineExecutions', { pipelineName: 'js-safety' })).pipelineExecutionSummaries[0].pipelineExecutionId;
  await waitStatus('js-safety', state.safetyHeld, 'Failed');
  const deploy = stageState(await call('GetPipelineState', { name: 'js-safety' }), 'Deploy');
  assert.equal(deploy.latestExecution.status, 'Failed');
  assert.equal(deploy.beforeEntryConditionState.latestExecution.status, 'Failed');
  const [rule] = deploy.beforeEntryConditionState.conditionStates[0].ruleStates;
  assert.deepEqual([rule.ruleName, rule.latestExecution.status], ['ReleaseIsGo', 'Failed']);
  assert.equal(deploy.actionStates[0].latestExecution, undefined, 'the Deploy action did not run');
});

await check('ListRuleExecutions: the VariableCheck run of the entry condition, its configuration resolved', async () => {
  const { ruleExecutionDetails } = await call('ListRuleExecutions', { pipelineName: 'js-safety', filter: { pipelineExecutionId: state.safetyHeld } });
  assert.equal(ruleExecutionDetails.length, 1);
  const [run] = ruleExecutionDetails;
  assert.deepEqual([run.pipelineExecutionId, run.stageName, run.ruleName, run.status, run.pipelineVersion], [state.safetyHeld, 'Deploy', 'ReleaseIsGo', 'Failed', 1]);
  assert.ok(run.ruleExecutionId, 'a rule execution id');
  assert.ok(run.startTime instanceof Date && run.lastUpdateTime instanceof Date);
  assert.deepEqual(run.input.ruleTypeId, ruleTypeId('VariableCheck'));
  assert.equal(run.input.configuration.Variable, '#{variables.Release}');
  assert.equal(run.input.resolvedConfiguration.Variable, 'hold');
  assert.ok(run.output.executionResult.externalExecutionSummary.includes('"hold"'), `summary: ${run.output.executionResult.externalExecutionSummary}`);
});

await check('rules: ListRuleExecutions of a missing pipeline is PipelineNotFoundException', async () => {
  await expectError('ListRuleExecutions', { pipelineName: 'js-missing' }, cp.PipelineNotFoundException, { includes: 'js-missing' });
});

await check('rules: ListRuleExecutions of a missing execution is PipelineExecutionNotFoundException', async () => {
  await expectError('ListRuleExecutions', { pipelineName: 'js-safety', filter: { pipelineExecutionId: randomUUID() } }, cp.PipelineExecutionNotFoundException);
});

await check('conditions: OverrideStageCondition of a condition not being evaluated is ConditionNotOverridableException', async () => {
  state.safety1 = await startRelease();
  // The execution evaluates the onSuccess condition; its entry condition was met earlier.
  await expectError('OverrideStageCondition', { pipelineName: 'js-safety', stageName: 'Deploy', pipelineExecutionId: state.safety1, conditionType: 'BEFORE_ENTRY' },
    cp.ConditionNotOverridableException);
});

await check('OverrideStageCondition: lets an execution past its onSuccess condition (a DeploymentWindow waiting for 2099)', async () => {
  await finishRelease(state.safety1);
  const deploy = stageState(await call('GetPipelineState', { name: 'js-safety' }), 'Deploy');
  assert.equal(deploy.latestExecution.status, 'Succeeded');
  assert.equal(deploy.beforeEntryConditionState.latestExecution.status, 'Succeeded');
  assert.equal(deploy.onSuccessConditionState.latestExecution.status, 'Overridden');
  const { ruleExecutionDetails } = await call('ListRuleExecutions', { pipelineName: 'js-safety', filter: { pipelineExecutionId: state.safety1 } });
  assert.deepEqual(ruleExecutionDetails.map((r) => `${r.ruleName}:${r.status}`).sort(), ['ReleaseIsGo:Succeeded', 'Window2099:Abandoned']);
});

await check('conditions: OverrideStageCondition for an execution no longer the stage\'s latest is NotLatestPipelineExecutionException', async () => {
  await expectError('OverrideStageCondition', { pipelineName: 'js-safety', stageName: 'Deploy', pipelineExecutionId: state.safetyHeld, conditionType: 'ON_SUCCESS' },
    cp.NotLatestPipelineExecutionException);
});

await check('ListDeployActionExecutionTargets: the bucket the S3 deploy wrote to, with its phases', async () => {
  const run = await deployRun(state.safety1);
  assert.equal(run.status, 'Succeeded');
  const { targets } = await call('ListDeployActionExecutionTargets', { pipelineName: 'js-safety', actionExecutionId: run.actionExecutionId });
  assert.equal(targets.length, 1);
  const [target] = targets;
  assert.deepEqual([target.targetId, target.targetType, target.status], [siteBucket, 'AWS::S3::Bucket', 'Succeeded']);
  assert.ok(target.startTime instanceof Date && target.endTime instanceof Date);
  assert.ok(target.events.some((e) => e.name === 'Upload' && e.status === 'Succeeded'), `events: ${JSON.stringify(target.events)}`);
});

await check('deploy targets: ListDeployActionExecutionTargets of an unknown action execution is ActionExecutionNotFoundException', async () => {
  await expectError('ListDeployActionExecutionTargets', { pipelineName: 'js-safety', actionExecutionId: randomUUID() }, cp.ActionExecutionNotFoundException);
});

await check('RollbackStage: Deploy back to the first release, a ROLLBACK execution by ManualRollback with its artifact', async () => {
  const second = await finishRelease(await startRelease());
  const { pipelineExecutionId: id } = await call('RollbackStage', { pipelineName: 'js-safety', stageName: 'Deploy', targetPipelineExecutionId: state.safety1 });
  assert.ok(id && id !== second && id !== state.safety1);
  await waitStatus('js-safety', id, 'Succeeded');
  const e = await execution('js-safety', id);
  assert.equal(e.executionType, 'ROLLBACK');
  assert.equal(e.rollbackMetadata?.rollbackTargetPipelineExecutionId, state.safety1);
  assert.equal(e.trigger.triggerType, 'ManualRollback');
  const [latest] = (await call('ListPipelineExecutions', { pipelineName: 'js-safety', maxResults: 1 })).pipelineExecutionSummaries;
  assert.deepEqual([latest.pipelineExecutionId, latest.executionType, latest.rollbackMetadata?.rollbackTargetPipelineExecutionId], [id, 'ROLLBACK', state.safety1]);
  const redeployed = await deployRun(id);
  assert.equal(redeployed.status, 'Succeeded');
  assert.deepEqual(redeployed.input.inputArtifacts, (await deployRun(state.safety1)).input.inputArtifacts, 'the rollback deploys the first release\'s artifact');
});

await check('rollbacks: RollbackStage of the source stage is UnableToRollbackStageException', async () => {
  await expectError('RollbackStage', { pipelineName: 'js-safety', stageName: 'Source', targetPipelineExecutionId: state.safety1 }, cp.UnableToRollbackStageException);
});

await check('rollbacks: RollbackStage to an unknown execution is PipelineExecutionNotFoundException', async () => {
  await expectError('RollbackStage', { pipelineName: 'js-safety', stageName: 'Deploy', targetPipelineExecutionId: randomUUID() }, cp.PipelineExecutionNotFoundException);
});

// ===== webhooks ===================================================================================

const hook = {
  name: 'js-hook', targetPipeline: 'js-github', targetAction: 'Source',
  filters: [{ jsonPath: '$.ref', matchEquals: 'refs/heads/{Branch}' }],
  authentication: 'GITHUB_HMAC', authenticationConfiguration: { SecretToken: 'webhook-secret' },
};

await check('PutWebhook: a GitHub HMAC webhook with a filter, tagged', async () => {
  const { webhook } = await call('PutWebhook', { webhook: hook, tags: [{ key: 'team', value: 'js' }] });
  const { authenticationConfiguration, ...definition } = webhook.definition; // whether AWS echoes SecretToken is not checked
  assert.deepEqual({ ...definition, authenticationConfiguration: hook.authenticationConfiguration }, hook);
  assert.equal(webhook.arn, `${arnPrefix}:webhook:js-hook`);
  assert.match(webhook.url, /^https?:\/\//);
  assert.deepEqual(webhook.tags, [{ key: 'team', value: 'js' }]);
  state.hookUrl = webhook.url;
});

await check('ListWebhooks: the webhook, its URL unchanged by a second PutWebhook', async () => {
  await call('PutWebhook', { webhook: { ...hook, filters: [{ jsonPath: '$.ref', matchEquals: 'refs/heads/main' }] } });
  const { webhooks } = await call('ListWebhooks', {});
  assert.equal(webhooks.length, 1);
  assert.equal(webhooks[0].url, state.hookUrl);
  assert.equal(webhooks[0].definition.filters[0].matchEquals, 'refs/heads/main');
});

await check('RegisterWebhookWithThirdParty and DeregisterWebhookWithThirdParty', async () => {
  const reg = await call('RegisterWebhookWithThirdParty', { webhookName: 'js-hook' });
  assert.equal(reg.$metadata.httpStatusCode, 200);
  const dereg = await call('DeregisterWebhookWithThirdParty', { webhookName: 'js-hook' });
  assert.equal(dereg.$metadata.httpStatusCode, 200);
});

await check('webhooks: RegisterWebhookWithThirdParty of a missing webhook is WebhookNotFoundException', async () => {
  await expectError('RegisterWebhookWithThirdParty', { webhookName: 'js-no-hook' }, cp.WebhookNotFoundException);
});

await check('webhooks: DeregisterWebhookWithThirdParty of a missing webhook is WebhookNotFoundException', async () => {
  await expectError('DeregisterWebhookWithThirdParty', { webhookName: 'js-no-hook' }, cp.WebhookNotFoundException);
});

await check('webhooks: IP authentication with a malformed range is InvalidWebhookAuthenticationParametersException', async () => {
  await expectError('PutWebhook', { webhook: { ...hook, name: 'js-bad-hook', authentication: 'IP', authenticationConfiguration: { AllowedIPRange: 'not-a-cidr' } } },
    cp.InvalidWebhookAuthenticationParametersException);
});

await check('webhooks: a filter that is not JSONPath is InvalidWebhookFilterPatternException', async () => {
  await expectError('PutWebhook', { webhook: { ...hook, name: 'js-bad-hook', filters: [{ jsonPath: 'ref' }] } }, cp.InvalidWebhookFilterPatternException);
});

await check('webhooks: a webhook for a missing pipeline is PipelineNotFoundException', async () => {
  await expectError('PutWebhook', { webhook: { ...hook, name: 'js-bad-hook', targetPipeline: 'js-missing' } }, cp.PipelineNotFoundException);
});

// ===== tags =======================================================================================

await check('ListTagsForResource, TagResource, UntagResource: a pipeline', async () => {
  const arn = `${arnPrefix}:js-v1`;
  assert.deepEqual((await call('ListTagsForResource', { resourceArn: arn })).tags, [{ key: 'team', value: 'js' }]);
  await call('TagResource', { resourceArn: arn, tags: [{ key: 'stage', value: 'prod' }, { key: 'team', value: 'web' }] });
  await call('UntagResource', { resourceArn: arn, tagKeys: ['stage'] });
  assert.deepEqual((await call('ListTagsForResource', { resourceArn: arn })).tags, [{ key: 'team', value: 'web' }]);
});

await check('tags: a webhook and a custom action type are taggable by ARN', async () => {
  const hookArn = `${arnPrefix}:webhook:js-hook`;
  await call('TagResource', { resourceArn: hookArn, tags: [{ key: 'owner', value: 'ci' }] });
  const byKey = (tags) => [...tags].sort((a, b) => a.key.localeCompare(b.key));
  assert.deepEqual(byKey((await call('ListTagsForResource', { resourceArn: hookArn })).tags), [{ key: 'owner', value: 'ci' }, { key: 'team', value: 'js' }]);
  const typeArn = `${arnPrefix}:actiontype:Custom/Source/JsSource/1`;
  assert.deepEqual((await call('ListTagsForResource', { resourceArn: typeArn })).tags, [{ key: 'team', value: 'js' }]);
});

// AWS's message: moto's test_tag_resource_errors.
await check("tags: a key with the 'aws:' prefix is InvalidTagsException", async () => {
  await expectError('TagResource', { resourceArn: `${arnPrefix}:js-v1`, tags: [{ key: 'aws:key', value: 'v' }] }, cp.InvalidTagsException,
    { message: "Not allowed to modify system tags. System tags start with 'aws:'. msg=[Caller is an end user and not allowed to mutate system tags]" });
});

// AWS's message: moto's test_tag_resource_errors (50 more tags on a pipeline that has one).
await check('tags: more than 50 tags on a resource is TooManyTagsException', async () => {
  const tags = Array.from({ length: 50 }, (_, i) => ({ key: `key-${i}`, value: `value-${i}` }));
  await expectError('TagResource', { resourceArn: `${arnPrefix}:js-v1`, tags }, cp.TooManyTagsException,
    { message: `Tag limit exceeded for resource [${arnPrefix}:js-v1].` });
});

// AWS's message: moto's test_tag_resource_errors, test_untag_resource_errors and
// test_list_tags_for_resource_errors.
for (const [operation, extra] of [['TagResource', { tags: [{ key: 'k', value: 'v' }] }], ['UntagResource', { tagKeys: ['k'] }], ['ListTagsForResource', {}]]) {
  await check(`tags: ${operation} of a missing pipeline is ResourceNotFoundException`, async () => {
    await expectError(operation, { resourceArn: `${arnPrefix}:js-missing`, ...extra }, cp.ResourceNotFoundException,
      { message: `The account with id '${account}' does not include a pipeline with the name 'js-missing'` });
  });
}

await check('tags: a resource ARN outside its pattern is ValidationException in AWS form', async () => {
  await expectError('ListTagsForResource', { resourceArn: 'not-an-arn' }, cp.ValidationException, {
    message: validation('not-an-arn', 'resourceArn', 'Member must satisfy regular expression pattern: arn:aws(-[\\w]+)*:codepipeline:.+:[0-9]{12}:.+'),
  });
});

await check('DeleteWebhook: the webhook goes, and its tags with it', async () => {
  await call('DeleteWebhook', { name: 'js-hook' });
  assert.deepEqual((await call('ListWebhooks', {})).webhooks ?? [], []);
  await expectError('RegisterWebhookWithThirdParty', { webhookName: 'js-hook' }, cp.WebhookNotFoundException);
});

// ===== not implemented yet (see NOT_IMPLEMENTED_YET at the top) ===================================

const notImplemented = new Set();
for (const [operation, input] of Object.entries(NOT_IMPLEMENTED_YET)) {
  await check(`${operation}: not implemented yet, NotImplementedException (HTTP 501, not retried)`, async () => {
    try {
      await call(operation, input());
    } catch (err) {
      assert.equal(err.name, 'NotImplementedException', `got ${err.name}: ${err.message}`);
      assert.ok(err instanceof cp.CodePipelineServiceException);
      assert.equal(err.$metadata.httpStatusCode, 501);
      assert.equal(err.$fault, 'server');
      assert.equal(err.$metadata.attempts, 1, 'the SDK does not retry a 501');
      assert.ok(err.message.includes(operation), `the message names ${operation}: ${err.message}`);
      notImplemented.add(operation);
      return;
    }
    throw new Error(`${operation} succeeded: remove it from NOT_IMPLEMENTED_YET and give it a happy-path check`);
  });
}

// ===== coverage ===================================================================================

await check('coverage: every operation of the CodePipeline client answered on its happy path', async () => {
  const operations = Object.keys(cp).filter((k) => k.endsWith('Command') && k !== '$Command').map((k) => k.slice(0, -'Command'.length)).sort();
  assert.equal(operations.length, 44, `the SDK has ${operations.length} operations`);
  const missing = operations.filter((op) => !succeeded.has(op) && !notImplemented.has(op));
  assert.deepEqual(missing, [], `never answered successfully: ${missing.join(', ')}`);
});

console.log(`${passed} passed, ${failed} failed`);
client.destroy();
process.exitCode = failed === 0 ? 0 : 1;
