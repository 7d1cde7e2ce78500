#!/usr/bin/env python3
"""Replay every example that the AWS CLI ships for CodePipeline against a real Sluice server.

The examples are the .rst files under awscli/examples/codepipeline/ of the installed AWS CLI; they
are parsed at run time (the command, the JSON file it reads where it has one, and AWS's output).
For each one this script sets up the state the example assumes (the pipeline it names, a custom
action type, a job, a webhook, tags, a failed stage, an execution in progress, ...), substitutes
the ids the example invents with the real ones, runs the command through the AWS CLI against
Sluice, and compares the answer with AWS's output structurally:

- the same member names at every level and the same JSON types;
- the same values, except where a value cannot be the same on another server: timestamps,
  credentials, URLs, execution ids, nonces and tokens (by member name, see VOLATILE_MEMBERS), ids
  that only the command itself creates (listed per example), and the account part of ARNs. An id
  that the setup substituted is compared exactly;
- the same number of list items.

What an example gets wrong or cannot reproduce (an output that is not valid JSON, an AWS console
URL, a member the current CLI cannot print, a member the API gained after the example was
written, ...) is an explicit exception for that example and that path only, with the reason next
to it in EXAMPLES below. Nothing else is loosened.

The examples run in the order of their file names, on one server, each after its own setup,
which starts by deleting every pipeline and webhook where the example deals with them, so that
names are free and lists hold what the example shows.
Custom action types cannot be deleted for good (an account never reuses one's id), so the
examples that need custom action types other examples contradict get a server of their own.

Usage: replay.py --endpoint URL [--sluice BINARY] [--account-id ID] [--only NAME]... [-v]
       replay.py --self-test

The server at --endpoint must run with the --account-id given here (111111111111 by default, the
account the examples show) and with `--worker-providers CodeDeploy`, so that the examples'
CodeDeploy actions become jobs this script completes as AWS would. A few examples need an account
or region of their own (see `server` in EXAMPLES); for them the script starts a fresh
`sluice serve` from --sluice. scripts/conformance.sh does all of this.
"""

import argparse
import copy
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request

ACCOUNT = "111111111111"
REGION = "us-east-1"


# ----------------------------------------------------------------------------------------------
# Parsing the examples


def examples_dir():
    try:
        import awscli
    except ImportError:
        out = subprocess.run(["aws", "--version"], capture_output=True, text=True)
        sys.exit("replay: cannot import awscli with %s (aws --version: %s)" % (sys.executable, (out.stdout + out.stderr).strip()))
    return os.path.join(os.path.dirname(awscli.__file__), "examples", "codepipeline")


class Example:
    """What an .rst file says: the command, the JSON file it reads, and the output."""

    def __init__(self, name, text):
        self.name = name
        self.text = text
        self.command = None  # the command line, continuation lines joined
        self.file_name = None  # the X of file://X in the command
        self.file_text = None  # the JSON file's contents as shown
        self.output_text = None  # the Output:: block, if any
        self.prose = []  # paragraphs outside literal blocks
        for intro, body in literal_blocks(text, self.prose):
            if body.startswith("aws codepipeline") and self.command is None:
                self.command = re.sub(r"\\\n\s*", " ", body)
            elif intro.rstrip(":").strip().lower() == "output":
                self.output_text = body
            elif body.startswith("{") and self.file_text is None:
                self.file_text = body
        if self.command:
            m = re.search(r"file://(\S+)", self.command)
            self.file_name = m and m.group(1)

    def output_kind(self):
        """'json', 'empty' or 'prose' (a sentence describing the output instead of showing it)."""
        text = self.output_text
        if text is None:
            prose = " ".join(self.prose)
            if re.search(r"(produces|returns) no output", prose):
                return "empty"
            return "prose"
        if text.strip() == "None.":
            return "empty"
        if text.lstrip().startswith("{"):
            return "json"
        return "prose"


def literal_blocks(text, prose):
    """The reStructuredText literal blocks of text: (the line introducing it, its dedented body).
    Lines outside blocks are appended to prose."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.rstrip().endswith("::"):
            prose.append(line)
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        body = []
        while j < len(lines) and (not lines[j].strip() or lines[j][0] in " \t"):
            body.append(lines[j].expandtabs(4))
            j += 1
        yield line.strip(), textwrap.dedent("\n".join(body)).strip()
        i = j


# ----------------------------------------------------------------------------------------------
# Talking to Sluice


class ApiError(Exception):
    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code


class Server:
    """A Sluice server: its endpoint, the account and region it runs as, and a JSON 1.1 client
    for setting up state (the replayed commands themselves go through the AWS CLI)."""

    def __init__(self, endpoint, account, region, process=None, data=None):
        self.endpoint = endpoint.rstrip("/")
        self.account = account
        self.region = region
        self.process = process
        self.data = data
        self.demo_source_ready = False

    def __call__(self, op, **body):
        req = urllib.request.Request(
            self.endpoint + "/",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "CodePipeline_20150709." + op},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                data = resp.read()
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read() or b"{}")
            except ValueError:
                err = {}
            raise ApiError(err.get("__type", "HTTP %d" % e.code), err.get("message", "")) from None
        return json.loads(data) if data else {}

    def arn(self, resource):
        return "arn:aws:codepipeline:%s:%s:%s" % (self.region, self.account, resource)

    def stop(self):
        if self.process:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            shutil.rmtree(self.data, ignore_errors=True)


def start_server(binary, account, region):
    """A fresh `sluice serve` on a free loopback port with a data directory of its own."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    data = tempfile.mkdtemp(prefix="sluice-conformance-")
    log = open(os.path.join(data, "server.log"), "w")
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:%d" % port, "--data", os.path.join(data, "data"),
         "--account-id", account, "--region", region, "--worker-providers", "CodeDeploy"],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    server = Server("http://127.0.0.1:%d" % port, account, region, proc, data)
    for _ in range(200):
        try:
            urllib.request.urlopen(server.endpoint + "/_sluice/health", timeout=1).read()
            return server
        except OSError:
            if proc.poll() is not None:
                with open(os.path.join(data, "server.log")) as f:
                    raise RuntimeError("sluice serve exited: " + f.read())
            time.sleep(0.05)
    server.stop()
    raise RuntimeError("sluice serve did not answer on %s" % server.endpoint)


def cli_env(region):
    env = dict(os.environ)
    # Any credentials do; no user configuration may change what the CLI prints (the AWS CLI v1
    # prints timestamps as the service sends them, epoch seconds, like the examples).
    env.update(AWS_ACCESS_KEY_ID="conformance", AWS_SECRET_ACCESS_KEY="conformance", AWS_DEFAULT_REGION=region,
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_PAGER="")
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    return env


def aws(server, *args):
    """Run an AWS CLI command against server; (exit status, stdout, stderr)."""
    cmd = ["aws", "--endpoint-url", server.endpoint, "--output", "json"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(server.region), timeout=120)
    return p.returncode, p.stdout, p.stderr


def wait(what, predicate, timeout=30):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.1)


# ----------------------------------------------------------------------------------------------
# State the examples need


class Setup:
    """The state of one example, built on a server."""

    def __init__(self, server, examples, tmp):
        self.server = server
        self.examples = examples
        self.tmp = tmp

    # -- the declarations of other examples, reused

    def example_file(self, name):
        return json.loads(self.examples[name].file_text)

    def demo_pipeline(self, name, stage_names=None):
        """create-pipeline's own pipeline (an S3 source and a CodeDeploy deploy), named name."""
        p = self.example_file("create-pipeline")["pipeline"]
        p["name"] = name
        for stage in p["stages"]:
            stage["name"] = (stage_names or {}).get(stage["name"], stage["name"])
        return p

    # -- resetting

    def reset(self):
        """No pipelines, no webhooks: the lists an example shows hold only what it sets up."""
        api = self.server
        for w in api("ListWebhooks").get("webhooks", []):
            api("DeleteWebhook", name=w["definition"]["name"])
        for p in api("ListPipelines").get("pipelines", []):
            api("DeletePipeline", name=p["name"])

    # -- sources

    def demo_source(self):
        """The bucket and object create-pipeline's S3 source reads, on Sluice's own S3 endpoint."""
        if self.server.demo_source_ready:
            return
        src = self.example_file("create-pipeline")["pipeline"]["stages"][0]["actions"][0]["configuration"]
        zipfile = os.path.join(self.tmp, "source.zip")
        with open(zipfile, "wb") as f:
            f.write(b"PK\x05\x06" + b"\0" * 18)  # an empty zip archive
        for args in (["create-bucket", "--bucket", src["S3Bucket"]],
                     ["put-bucket-versioning", "--bucket", src["S3Bucket"], "--versioning-configuration", "Status=Enabled"],
                     ["put-object", "--bucket", src["S3Bucket"], "--key", src["S3ObjectKey"], "--body", zipfile]):
            rc, out, err = aws(self.server, "s3api", *args)
            if rc != 0:
                raise RuntimeError("s3api %s: %s" % (args[0], err.strip()))
        self.server.demo_source_ready = True

    def git_push(self, repo, branch, message, date):
        """Push one commit to a repository Sluice hosts; its id. The commit's message is exactly
        message, with no newline after it: commits made in CodeCommit's console (whose default
        message for an edit is "Edited <file>", as in list-action-executions) have none, while
        `git commit -m` would add one."""
        work = tempfile.mkdtemp(dir=self.tmp)
        env = dict(os.environ, GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date, GIT_AUTHOR_NAME="Example",
                   GIT_AUTHOR_EMAIL="example@example.com", GIT_COMMITTER_NAME="Example",
                   GIT_COMMITTER_EMAIL="example@example.com", GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
        def git(*args):
            p = subprocess.run(["git", *args], cwd=work, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError("git %s: %s" % (args[0], p.stderr.strip()))
            return p.stdout.strip()
        git("init", "-q", "-b", branch)
        with open(os.path.join(work, "template.yml"), "w") as f:
            f.write("Resources: {}\n")
        git("add", ".")
        commit = subprocess.run(["git", "commit-tree", git("write-tree")], cwd=work, env=env, input=message,
                                capture_output=True, text=True, check=True).stdout.strip()
        git("update-ref", "refs/heads/" + branch, commit)
        git("push", "-q", "%s/v1/repos/%s" % (self.server.endpoint, repo), branch)
        return git("rev-parse", "HEAD")

    # -- executions

    def executions(self, pipeline):
        return self.server("ListPipelineExecutions", pipelineName=pipeline)["pipelineExecutionSummaries"]

    def wait_execution(self, pipeline, status, execution_id=None):
        """The execution (the latest one by default) once it has status."""
        def check():
            for e in self.executions(pipeline):
                if execution_id in (None, e["pipelineExecutionId"]):
                    return e if e["status"] == status else None
            return None
        return wait("an execution of %s to be %s" % (pipeline, status), check)

    def wait_action(self, pipeline, stage, action, status="InProgress"):
        def check():
            state = self.server("GetPipelineState", name=pipeline)
            for s in state["stageStates"]:
                for a in s.get("actionStates", []):
                    if s["stageName"] == stage and a["actionName"] == action and a.get("latestExecution", {}).get("status") == status:
                        return True
            return False
        wait("%s/%s/%s to be %s" % (pipeline, stage, action, status), check)

    def poll_job(self, type_id, pipeline, query=None):
        """The job of pipeline's action of type type_id, polled (not acknowledged)."""
        def check():
            body = dict(actionTypeId=type_id, maxBatchSize=1)
            if query:
                body["queryParam"] = query
            for job in self.server("PollForJobs", **body).get("jobs", []):
                if job["data"]["pipelineContext"]["pipelineName"] != pipeline:
                    raise RuntimeError("a job of another pipeline: %s" % job["data"]["pipelineContext"]["pipelineName"])
                return job
            return None
        return wait("a %s job of %s" % (type_id["provider"], pipeline), check)

    def codedeploy_job(self, pipeline, succeed=True, external_id=None, summary=None):
        """Do what CodeDeploy does for pipeline's CodeDeploy action: take its job, end it."""
        job = self.poll_job(dict(category="Deploy", owner="AWS", provider="CodeDeploy", version="1"), pipeline)
        self.server("AcknowledgeJob", jobId=job["id"], nonce=job["nonce"])
        if succeed:
            details = {}
            if external_id:
                details["externalExecutionId"] = external_id
            if summary:
                details["summary"] = summary
            self.server("PutJobSuccessResult", jobId=job["id"], executionDetails=details)
        else:
            self.server("PutJobFailureResult", jobId=job["id"], failureDetails=dict(type="JobFailed", message=summary or "failed"))
        return job

    def demo_run(self, pipeline, started=None):
        """Run pipeline (a demo_pipeline) to Succeeded: the source, then its CodeDeploy job."""
        self.codedeploy_job(pipeline, external_id="d-EXAMPLE", summary="Deployment Succeeded")
        return self.wait_execution(pipeline, "Succeeded", started)

    # -- custom actions and their jobs

    TEST_TYPE = dict(category="Test", owner="Custom", provider="MyJenkinsProviderName", version="1")

    def job_pipeline(self):
        """The pipeline of the job that poll-for-jobs and get-job-details show: MySecondPipeline
        with the custom Test action MyJenkinsTest-Action in its stage Testing, reading the
        artifact MyAppBuild from the artifact store codepipeline-us-east-1-11EXAMPLE11. The custom
        action type has the settings and counts that list-action-types shows for this type, and
        the one configuration property the jobs show, ProjectName, queryable (poll-for-jobs
        queries on it)."""
        listed = json.loads(self.examples["list-action-types"].output_text)["actionTypes"][1]
        try:
            self.server("CreateCustomActionType", category="Test", provider="MyJenkinsProviderName", version="1",
                        settings=listed["settings"],
                        configurationProperties=[dict(name="ProjectName", required=True, key=True, secret=False, queryable=True)],
                        inputArtifactDetails=listed["inputArtifactDetails"], outputArtifactDetails=listed["outputArtifactDetails"])
        except ApiError as e:
            if e.code != "ActionTypeAlreadyExistsException":
                raise
        self.demo_source()
        source = self.demo_pipeline("MySecondPipeline")["stages"][0]
        source["actions"][0]["outputArtifacts"] = [{"name": "MyAppBuild"}]
        self.server("CreatePipeline", pipeline={
            "name": "MySecondPipeline",
            "roleArn": "arn:aws:iam::%s:role/AWS-CodePipeline-Service" % self.server.account,
            "artifactStore": {"type": "S3", "location": "codepipeline-us-east-1-11EXAMPLE11"},
            "stages": [source, {"name": "Testing", "actions": [{
                "name": "MyJenkinsTest-Action", "actionTypeId": self.TEST_TYPE,
                "inputArtifacts": [{"name": "MyAppBuild"}],
                "configuration": {"ProjectName": "MyJenkinsExampleTestProject"}}]}]})
        self.wait_action("MySecondPipeline", "Testing", "MyJenkinsTest-Action")

    def job(self):
        self.job_pipeline()
        return self.poll_job(self.TEST_TYPE, "MySecondPipeline", {"ProjectName": "MyJenkinsExampleTestProject"})

    # -- webhooks

    def github_pipeline(self, name, action):
        """A pipeline whose source is a GitHub (version 1) action, the kind webhooks serve."""
        self.server("CreatePipeline", pipeline={
            "name": name,
            "roleArn": "arn:aws:iam::%s:role/AWS-CodePipeline-Service" % self.server.account,
            "artifactStore": {"type": "S3", "location": "codepipeline-%s-11EXAMPLE11" % self.server.region},
            "stages": [
                {"name": "Source", "actions": [{
                    "name": action, "actionTypeId": dict(category="Source", owner="ThirdParty", provider="GitHub", version="1"),
                    "outputArtifacts": [{"name": "SourceArtifact"}],
                    "configuration": {"Owner": "my-owner", "Repo": "my-repo", "Branch": "main", "OAuthToken": "token",
                                      "PollForSourceChanges": "false"}}]},
                {"name": "Approve", "actions": [{
                    "name": "Approve", "actionTypeId": dict(category="Approval", owner="AWS", provider="Manual", version="1")}]}]})

    def webhook(self):
        """my-webhook, as list-webhooks shows it."""
        definition = list_webhooks_expected(self.examples["list-webhooks"].output_text)["webhooks"][0]["definition"]
        self.github_pipeline(definition["targetPipeline"], definition["targetAction"])
        self.server("PutWebhook", webhook=definition)


# ----------------------------------------------------------------------------------------------
# The examples: setup, substitutions and exceptions
#
# Each entry may have:
#   server      (account, region) for an example that needs a fresh server of its own
#   setup       fn(Setup) -> {invented value: real value}, applied to the command, the JSON file
#               and the expected output (a value substituted is then compared exactly)
#   command     fn(args) -> args, an explicit fix of the command line
#   file        fn(obj) -> obj, an explicit fix of the JSON file's contents
#   output      fn(text) -> text, an explicit repair of an output block that is not valid JSON
#   expected    fn(expected, Example, Setup) -> expected: the expected output where the example
#               describes it in prose, or an explicit fix of what it shows
#   volatile    paths whose value the example invents and only the command itself creates: the
#               type is compared, not the value
#   pattern     {path: regex} for a value of which part is invented
#   exceptions  [(path, kind, reason)]: kind 'absent' (the member may be missing from Sluice's
#               answer), 'ignore' (a member of the example that the current CLI cannot print),
#               'unordered' (a list compared as a multiset), 'prefix' (the example shows only the
#               first items of the list)
#
# Paths look like jobs[*].data.actionTypeId.__type; [*] is any index.

# The AWS CLI prints only the members of an output shape in the service model; the examples written
# when the service still sent type hints show "__type" members, which no current CLI can print.
# Members the API gained after an example was written, which AWS answers today: each is allowed
# in Sluice's answer at the paths listed with it, and nowhere else.
V2 = "pipelineType and executionMode came with V2 pipelines (2023), after this example"
METADATA = "GetPipeline's metadata (ARN, created, updated) came after this example"
JOB_CONTEXT = "pipelineArn, pipelineExecutionId, actionExecutionId and artifact revisions came to job data after this example"
EXECUTION_SUMMARY = "sourceRevisions, trigger, executionMode and executionType came to execution summaries after this example"
STATE = "actionExecutionId, the stages' latestExecution and inboundExecutions came to GetPipelineState after this example"


def newer(paths, why):
    return [(p, "newer", why) for p in paths]


NOT_IN_MODEL = "'__type' is not a member of any shape of the service model: the current CLI drops it"
CONSOLE_URL = "an AWS console URL, which a server other than AWS cannot reproduce"


def job_type_hints(prefix):
    return [(prefix + p, "ignore", NOT_IN_MODEL) for p in (
        "data.actionConfiguration.__type", "data.actionTypeId.__type", "data.artifactCredentials.__type",
        "data.inputArtifacts[*].__type", "data.pipelineContext.__type")]


def tags_as_list(expected, example, setup):
    # The example shows the tags as a map; ListTagsForResource answers a list of {key, value}
    # (the service model's TagList), which is all the CLI can print. Same tags, the model's form;
    # a map has no order, so the list is compared as a multiset (see exceptions).
    expected["tags"] = [{"key": k, "value": v} for k, v in expected["tags"].items()]
    return expected


def list_webhooks_expected(text):
    return json.loads(fix_list_webhooks_output(text))


def fix_list_webhooks_output(text):
    # The example's item reads `"url": "https://...": { <definition> }`, which is not JSON: the
    # definition lost its member name. ListWebhookItem is {definition, url, arn, ...}.
    fixed, n = re.subn(r'("url":\s*"[^"]*"):\s*\{', r'\1, "definition": {', text)
    assert n == 1, "list-webhooks: the output no longer has the malformed url member this fix expects"
    return fixed


def truncated_list(text):
    # The example elides the rest of the list with ". . . ." after the second item; cut there and
    # close the list (see the 'prefix' exception).
    head, sep, _ = text.partition(". . . .")
    assert sep, "list-action-executions: the output is no longer truncated"
    return head.rstrip().rstrip(",") + "]}"


def setup_reset(s):
    s.reset()
    return {}


def setup_acknowledge_job(s):
    s.reset()
    job = s.job()
    return {"f4f4ff82-2d11-EXAMPLE": job["id"], "3": job["nonce"]}


def setup_delete_custom_action_type(s):
    body = s.example_file("create-custom-action-type")
    types = s.server("ListActionTypes", actionOwnerFilter="Custom")["actionTypes"]
    if not any(t["id"]["category"] == body["category"] and t["id"]["provider"] == body["provider"] and t["id"]["version"] == body["version"] for t in types):
        s.server("CreateCustomActionType", **body)
    return {}


def setup_pipeline(name, **kw):
    def setup(s):
        s.reset()
        s.server("CreatePipeline", pipeline=s.demo_pipeline(name, **kw))
        return {}
    return setup


def setup_webhook(register, deregister=False):
    def setup(s):
        s.reset()
        s.webhook()
        if register:
            s.server("RegisterWebhookWithThirdParty", webhookName="my-webhook")
        if deregister:
            s.server("DeregisterWebhookWithThirdParty", webhookName="my-webhook")
        return {}
    return setup


def setup_enable_stage_transition(s):
    setup_pipeline("MyFirstPipeline")(s)
    s.server("DisableStageTransition", pipelineName="MyFirstPipeline", stageName="Beta", transitionType="Inbound",
             reason="Disabled by the conformance replay")
    return {}


def setup_get_job_details(s):
    s.reset()
    return {"f4f4ff82-2d11-EXAMPLE": s.job()["id"]}


def setup_get_pipeline_state(s):
    # MyFirstPipeline at version 1, its source fetched and its CodeDeploy action succeeded with
    # the deployment id and summary the example shows.
    s.reset()
    s.demo_source()
    s.server("CreatePipeline", pipeline=s.demo_pipeline("MyFirstPipeline"))
    s.demo_run("MyFirstPipeline")
    return {}


def setup_list_action_executions(s):
    # myPipeline at version 12: a CodeCommit source (my-repo, branch production) and a CodeDeploy
    # deploy, with the namespaces, regions and configurations the example shows, artifacts in
    # artifact-bucket. Eleven updates make version 12; then a commit "Edited template.yml" dated
    # as in the example runs it, and the deployment succeeds as d-EXAMPLEE5.
    s.reset()
    example = json.loads(truncated_list(s.examples["list-action-executions"].output_text))["actionExecutionDetails"]
    deploy, source = example[0]["input"], example[1]["input"]
    def action(name, detail, inputs, outputs):
        return {"name": name, "actionTypeId": detail["actionTypeId"], "configuration": detail["configuration"],
                "region": detail["region"], "namespace": detail["namespace"],
                "inputArtifacts": [{"name": a} for a in inputs], "outputArtifacts": [{"name": a} for a in outputs]}
    pipeline = {
        "name": "myPipeline",
        "roleArn": "arn:aws:iam::%s:role/AWS-CodePipeline-Service" % s.server.account,
        "artifactStore": {"type": "S3", "location": deploy["inputArtifacts"][0]["s3location"]["bucket"]},
        "stages": [{"name": "Source", "actions": [action("Source", source, [], ["SourceArtifact"])]},
                   {"name": "Deploy", "actions": [action("Deploy", deploy, ["SourceArtifact"], [])]}]}
    s.server("CreatePipeline", pipeline=pipeline)
    for _ in range(11):
        s.server("UpdatePipeline", pipeline=pipeline)
    vars_ = example[1]["output"]["outputVariables"]
    commit = s.git_push(source["configuration"]["RepositoryName"], source["configuration"]["BranchName"],
                        vars_["CommitMessage"], vars_["AuthorDate"])
    def started():
        for e in s.executions("myPipeline"):
            if e.get("trigger", {}).get("triggerType") != "CreatePipeline":
                return e["pipelineExecutionId"]
    execution = wait("the push to start myPipeline", started)
    s.codedeploy_job("myPipeline", external_id="d-EXAMPLEE5", summary="Deployment Succeeded")
    s.wait_execution("myPipeline", "Succeeded", execution)
    return {"EXAMPLE0-adfc-488e-bf4c-1111111720d3": execution,
            # the commit: CodeCommit's external execution id and the CommitId variable
            "1111111ad99dcd35914c00b7fbea13995EXAMPLE": commit,
            "EXAMPLEad99dcd35914c00b7fbea139951111111": commit}


def fix_list_action_executions(expected, example, setup):
    # The same artifact, SourceArtifact of this execution, is shown in artifact-bucket as the
    # deploy's input and in amzn-s3-demo-bucket as the source's output: the documentation's
    # placeholder bucket replaced one of the two. The pipeline has one artifact store.
    out = expected["actionExecutionDetails"][1]["output"]["outputArtifacts"][0]["s3location"]
    assert out["bucket"] == "amzn-s3-demo-bucket"
    out["bucket"] = expected["actionExecutionDetails"][0]["input"]["inputArtifacts"][0]["s3location"]["bucket"]
    return expected


def setup_list_action_types(s):
    # The two custom action types the example lists, exactly as it shows them.
    for t in json.loads(s.examples["list-action-types"].output_text)["actionTypes"]:
        s.server("CreateCustomActionType", category=t["id"]["category"], provider=t["id"]["provider"],
                 version=t["id"]["version"], settings=t["settings"],
                 configurationProperties=t["actionConfigurationProperties"],
                 inputArtifactDetails=t["inputArtifactDetails"], outputArtifactDetails=t["outputArtifactDetails"])
    return {}


def setup_list_pipeline_executions(s):
    # MyPipeline with three executions, all Succeeded: the one CreatePipeline starts and two more.
    s.reset()
    s.demo_source()
    s.server("CreatePipeline", pipeline=s.demo_pipeline("MyPipeline"))
    s.demo_run("MyPipeline")
    for _ in range(2):
        started = s.server("StartPipelineExecution", name="MyPipeline")["pipelineExecutionId"]
        s.demo_run("MyPipeline", started)
    return {}


def setup_list_pipelines(s):
    # MyFirstPipeline at version 1, MySecondPipeline at version 2, nothing else.
    s.reset()
    s.server("CreatePipeline", pipeline=s.demo_pipeline("MyFirstPipeline"))
    second = s.demo_pipeline("MySecondPipeline")
    s.server("CreatePipeline", pipeline=second)
    s.server("UpdatePipeline", pipeline=second)
    return {}


def setup_tagged(tags):
    def setup(s):
        s.reset()
        body = dict(pipeline=s.demo_pipeline("MyPipeline"))
        if tags:
            body["tags"] = [{"key": k, "value": v} for k, v in tags]
        s.server("CreatePipeline", **body)
        return {"arn:aws:codepipeline:us-east-1:123456789012:MyPipeline": s.server.arn("MyPipeline")}
    return setup


EXAMPLE_TAGS = [("Project", "ProjectA"), ("IscontainerBased", "true")]


def setup_list_webhooks(s):
    s.webhook()
    return {}


def setup_poll_for_jobs(s):
    s.reset()
    s.job_pipeline()
    return {}


def fix_poll_for_jobs_file(body):
    # The example queries ProjectName=MyJenkinsTestProject but shows a job whose ProjectName is
    # MyJenkinsExampleTestProject, which that query cannot return (PollForJobs returns only the
    # jobs whose queryable property has the queried value). Query the value of the job shown.
    assert body["queryParam"] == {"ProjectName": "MyJenkinsTestProject"}
    body["queryParam"] = {"ProjectName": "MyJenkinsExampleTestProject"}
    return body


def setup_put_webhook(s):
    s.github_pipeline("pipeline_name", "Source")
    return {}


def fix_put_webhook_file(body):
    # The request names the placeholder action source_action_name while the answer shows Source,
    # and the answer shows the tag Project=ProjectA that the request does not set. Send what the
    # answer shows: target action Source, and that tag.
    assert body["webhook"]["targetAction"] == "source_action_name"
    body["webhook"]["targetAction"] = "Source"
    body["tags"] = [{"key": "Project", "value": "ProjectA"}]
    return body


def fix_put_webhook_expected(expected, example, setup):
    # PutWebhookOutput has one member, webhook (a ListWebhookItem, which carries the webhook's
    # tags); the example shows the tags beside it, where no CLI can print them. Expect them where
    # the model has them.
    expected["webhook"]["tags"] = expected.pop("tags")
    return expected


def setup_retry_stage_execution(s):
    # MyPipeline (create-pipeline's pipeline, its deploy stage named Deploy) with an execution
    # whose CodeDeploy action failed.
    s.reset()
    s.demo_source()
    s.server("CreatePipeline", pipeline=s.demo_pipeline("MyPipeline", stage_names={"Beta": "Deploy"}))
    s.codedeploy_job("MyPipeline", succeed=False, summary="Deployment Failed")
    failed = s.wait_execution("MyPipeline", "Failed")
    return {"b59babff-5f34-EXAMPLE": failed["pipelineExecutionId"]}


def setup_stop_pipeline_execution(s):
    # MyFirstPipeline with an execution in progress: its CodeDeploy job is waiting for a worker.
    s.reset()
    s.demo_source()
    s.server("CreatePipeline", pipeline=s.demo_pipeline("MyFirstPipeline"))
    s.wait_action("MyFirstPipeline", "Beta", "CodePipelineDemoFleet")
    return {"d-EXAMPLE": s.executions("MyFirstPipeline")[0]["pipelineExecutionId"]}


def stop_answers_its_execution(expected, example, setup):
    # The example says the command returns no output, but StopPipelineExecutionOutput has a
    # member, pipelineExecutionId, which the CLI prints: the id of the execution stopped.
    return {"pipelineExecutionId": "d-EXAMPLE"}


def setup_update_pipeline(s):
    # MyFirstPipeline at version 2, so that the example's update makes version 3.
    s.reset()
    p = s.demo_pipeline("MyFirstPipeline")
    s.server("CreatePipeline", pipeline=p)
    s.server("UpdatePipeline", pipeline=p)
    return {}


def created_action_type(expected, example, setup):
    # "This command returns the structure of the custom action": CreateCustomActionTypeOutput's
    # actionType, made of the request (the service model's ActionType).
    body = json.loads(example.file_text)
    return {"actionType": {
        "id": {"category": body["category"], "owner": "Custom", "provider": body["provider"], "version": body["version"]},
        "settings": body["settings"],
        "actionConfigurationProperties": body["configurationProperties"],
        "inputArtifactDetails": body["inputArtifactDetails"],
        "outputArtifactDetails": body["outputArtifactDetails"]}}


def created_pipeline(expected, example, setup):
    # "This command returns the structure of the pipeline": CreatePipelineOutput's pipeline, the
    # declaration sent.
    return {"pipeline": json.loads(example.file_text)["pipeline"]}


EXAMPLES = {
    "acknowledge-job": dict(setup=setup_acknowledge_job),
    "create-custom-action-type": dict(expected=created_action_type),
    "create-pipeline": dict(setup=setup_reset, expected=created_pipeline,
                            exceptions=newer(["pipeline.pipelineType", "pipeline.executionMode"], V2)),
    "delete-custom-action-type": dict(setup=setup_delete_custom_action_type),
    "delete-pipeline": dict(setup=setup_pipeline("MySecondPipeline")),
    "delete-webhook": dict(setup=setup_webhook(register=True, deregister=True)),
    "deregister-webhook-with-third-party": dict(setup=setup_webhook(register=True)),
    "disable-stage-transition": dict(
        setup=setup_pipeline("MyFirstPipeline"),
        # --reason is required by the current service model; the example predates it and the CLI
        # refuses the command without it.
        command=lambda args: args + ["--reason", "Disabled by the conformance replay"]),
    "enable-stage-transition": dict(setup=setup_enable_stage_transition),
    "get-job-details": dict(
        setup=setup_get_job_details,
        pattern={"jobDetails.data.inputArtifacts[*].location.s3Location.objectKey": r"MySecondPipeline/MyAppBuild/[^/]+"},
        exceptions=job_type_hints("jobDetails.") + newer([
            "jobDetails.data.inputArtifacts[*].revision", "jobDetails.data.pipelineContext.pipelineArn",
            "jobDetails.data.pipelineContext.pipelineExecutionId", "jobDetails.data.pipelineContext.action.actionExecutionId"], JOB_CONTEXT)),
    "get-pipeline-state": dict(
        setup=setup_get_pipeline_state,
        exceptions=[("stageStates[0].actionStates[0].entityUrl", "absent", CONSOLE_URL),
                    ("stageStates[1].actionStates[0].entityUrl", "absent", CONSOLE_URL),
                    ("stageStates[1].actionStates[0].latestExecution.externalExecutionUrl", "absent", CONSOLE_URL)]
        + newer(["stageStates[*].actionStates[*].latestExecution.actionExecutionId", "stageStates[*].latestExecution",
                 "stageStates[*].inboundExecutions"], STATE)
        + newer(["stageStates[0].actionStates[0].currentRevision"],
                "the example's S3 source shows no revision; AWS's API Reference documents currentRevision for a source action that ran")
        + newer(["stageStates[0].actionStates[0].latestExecution.summary", "stageStates[0].actionStates[0].latestExecution.externalExecutionUrl"],
                "Sluice's own S3 source says what it fetched and links its run's log (README: Built-in providers, Logs)")),
    "get-pipeline": dict(setup=setup_pipeline("MyFirstPipeline"),
                         exceptions=newer(["pipeline.pipelineType", "pipeline.executionMode"], V2) + newer(["metadata"], METADATA)),
    "list-action-executions": dict(
        setup=setup_list_action_executions,
        output=truncated_list,
        expected=fix_list_action_executions,
        pattern={"actionExecutionDetails[*].input.inputArtifacts[*].s3location.key": r"myPipeline/SourceArti/[^/]+",
                 "actionExecutionDetails[*].output.outputArtifacts[*].s3location.key": r"myPipeline/SourceArti/[^/]+"},
        exceptions=[("actionExecutionDetails", "prefix", "the example shows the first two items and elides the rest"),
                    # https://myaddress.com stands for the CodeCommit and CodeDeploy consoles
                    ("actionExecutionDetails[*].output.executionResult.externalExecutionUrl", "absent", CONSOLE_URL)]),
    # A fresh server: the Build type it lists has the same id as create-custom-action-type's but
    # other settings, and the Test type other properties than the jobs' one; an account can never
    # reuse a custom action type's id (DeleteCustomActionType's documentation).
    "list-action-types": dict(server=(ACCOUNT, REGION), setup=setup_list_action_types),
    "list-pipeline-executions": dict(
        setup=setup_list_pipeline_executions,
        exceptions=newer(["pipelineExecutionSummaries[*].sourceRevisions", "pipelineExecutionSummaries[*].trigger",
                          "pipelineExecutionSummaries[*].executionMode", "pipelineExecutionSummaries[*].executionType"], EXECUTION_SUMMARY)),
    "list-pipelines": dict(setup=setup_list_pipelines,
                           exceptions=newer(["pipelines[*].pipelineType", "pipelines[*].executionMode"], V2)),
    "list-tags-for-resource": dict(
        setup=setup_tagged(EXAMPLE_TAGS), expected=tags_as_list,
        exceptions=[("tags", "unordered", "the example shows the tags as a map, which has no order")]),
    # The example's webhook is in eu-central-1 of account 123456789012: a server of its own
    # that runs as that account and region. The example's --endpoint-url is replaced by the
    # server's, as for every example.
    "list-webhooks": dict(server=("123456789012", "eu-central-1"), setup=setup_list_webhooks, output=fix_list_webhooks_output),
    "poll-for-jobs": dict(
        setup=setup_poll_for_jobs, file=fix_poll_for_jobs_file,
        volatile=["jobs[*].id"],  # the job's id is first known from this very poll
        pattern={"jobs[*].data.inputArtifacts[*].location.s3Location.objectKey": r"MySecondPipeline/MyAppBuild/[^/]+"},
        exceptions=job_type_hints("jobs[*].") + newer([
            "jobs[*].data.inputArtifacts[*].revision", "jobs[*].data.pipelineContext.pipelineArn",
            "jobs[*].data.pipelineContext.pipelineExecutionId", "jobs[*].data.pipelineContext.action.actionExecutionId"], JOB_CONTEXT)),
    "put-webhook": dict(server=("123456789012", "eu-central-1"), setup=setup_put_webhook,
                        file=fix_put_webhook_file, expected=fix_put_webhook_expected),
    "retry-stage-execution": dict(setup=setup_retry_stage_execution),
    "start-pipeline-execution": dict(setup=setup_pipeline("MyFirstPipeline")),
    "stop-pipeline-execution": dict(setup=setup_stop_pipeline_execution, expected=stop_answers_its_execution),
    "tag-resource": dict(setup=setup_tagged([])),
    "untag-resource": dict(setup=setup_tagged(EXAMPLE_TAGS)),
    "update-pipeline": dict(
        setup=setup_update_pipeline,
        exceptions=[("pipeline.stages[*].actions[*].actionTypeId.__type", "ignore", NOT_IN_MODEL)]
        + newer(["pipeline.pipelineType", "pipeline.executionMode"], V2)),
}


# ----------------------------------------------------------------------------------------------
# Comparing


# Members whose values differ from server to server by nature; their type is still compared.
TIMESTAMPS = {"created", "updated", "lastStatusChange", "startTime", "lastUpdateTime", "lastChangedAt", "lastTriggered"}
# SecretToken: a webhook's secret ("If a secret token was provided, it will be redacted in the
# response", says the service model; the examples show it in clear).
CREDENTIALS = {"accessKeyId", "secretAccessKey", "sessionToken", "SecretToken"}
URLS = {"url", "entityUrl", "externalExecutionUrl", "revisionUrl"}
IDS = {"pipelineExecutionId", "actionExecutionId", "nonce", "token", "clientToken", "continuationToken"}
VOLATILE_MEMBERS = TIMESTAMPS | CREDENTIALS | URLS | IDS


def path_regex(p):
    return re.compile(re.escape(p).replace(r"\[\*\]", r"\[\d+\]") + r"\Z")


def json_type(v):
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return "null"


def show(v):
    s = json.dumps(v, sort_keys=True)
    return s if len(s) <= 160 else s[:157] + "..."


class Comparison:
    def __init__(self, spec, pinned):
        self.exceptions = [(path_regex(p), kind, why) for p, kind, why in spec.get("exceptions", [])]
        self.volatile = [path_regex(p) for p in spec.get("volatile", [])]
        self.patterns = [(path_regex(p), re.compile(r + r"\Z")) for p, r in spec.get("pattern", {}).items()]
        self.pinned = pinned  # real values substituted into the expected output: compared exactly
        self.diffs = []
        self.used = set()  # the exceptions that applied

    def exception(self, path, kind):
        for rx, k, why in self.exceptions:
            if k == kind and rx.match(path):
                self.used.add((path, kind, why))
                return True
        return False

    def diff(self, path, what):
        self.diffs.append("%s: %s" % (path or "(the answer)", what))

    def compare(self, exp, got, path="", member=None):
        if json_type(exp) != json_type(got):
            self.diff(path, "expected %s %s, got %s %s" % (json_type(exp), show(exp), json_type(got), show(got)))
            return
        if isinstance(exp, dict):
            for k in exp:
                sub = "%s.%s" % (path, k) if path else k
                if k not in got:
                    if self.exception(sub, "ignore") or self.exception(sub, "absent"):
                        continue
                    self.diff(sub, "member missing from Sluice's answer (AWS: %s)" % show(exp[k]))
                elif self.exception(sub, "ignore"):
                    self.diff(sub, "member present although the example's exception says no CLI can print it: %s" % show(got[k]))
                else:
                    self.compare(exp[k], got[k], sub, k)
            for k in got:
                if k not in exp:
                    sub = "%s.%s" % (path, k) if path else k
                    if not self.exception(sub, "newer"):
                        self.diff(sub, "member not in AWS's output (Sluice: %s)" % show(got[k]))
            return
        if isinstance(exp, list):
            if self.exception(path, "unordered"):
                rest = list(got)
                for i, e in enumerate(exp):
                    match = next((g for g in rest if self.quiet_equal(e, g, "%s[%d]" % (path, i))), None)
                    if match is None:
                        self.diff("%s[*]" % path, "item %s not in Sluice's answer %s" % (show(e), show(got)))
                    else:
                        rest.remove(match)
                for g in rest:
                    self.diff("%s[*]" % path, "item not in AWS's output (Sluice: %s)" % show(g))
                return
            n = len(exp)
            if len(got) != n and not (self.exception(path, "prefix") and len(got) > n):
                self.diff(path, "expected %d items, got %d" % (len(exp), len(got)))
            for i in range(min(n, len(got))):
                self.compare(exp[i], got[i], "%s[%d]" % (path, i), member)
            return
        # scalars
        if exp in self.pinned or exp == got:
            if exp != got:
                self.diff(path, "expected %s, got %s" % (show(exp), show(got)))
            return
        for rx, value in self.patterns:
            if rx.match(path):
                if not value.match(str(got)):
                    self.diff(path, "expected a value like %s (/%s/), got %s" % (show(exp), value.pattern[:-2], show(got)))
                return
        if member in VOLATILE_MEMBERS or any(rx.match(path) for rx in self.volatile):
            return
        if isinstance(exp, str) and exp.startswith("arn:") and isinstance(got, str) and got.startswith("arn:"):
            e, g = exp.split(":", 5), got.split(":", 5)
            if len(e) == len(g) == 6 and e[:4] + e[5:] == g[:4] + g[5:]:
                return  # the same ARN but for its account
        self.diff(path, "expected %s, got %s" % (show(exp), show(got)))

    def quiet_equal(self, exp, got, path):
        saved, self.diffs = self.diffs, []
        self.compare(exp, got, path)
        ok = not self.diffs
        self.diffs = saved
        return ok


def self_test():
    """The comparison finds what it must and allows only what it says; raises if not."""
    def diffs(exp, got, spec=None, pinned=()):
        c = Comparison(spec or {}, set(pinned))
        c.compare(exp, got)
        return c.diffs
    arn = "arn:aws:codepipeline:us-east-1:111111111111:P"
    same = {"a": [1, {"b": True}], "created": 1.5, "url": "x", "arn": arn, "nonce": "3"}
    assert diffs(same, copy.deepcopy(same)) == []
    cases = [  # (expected, got, spec, pinned, number of differences)
        ({"a": 1}, {}, None, (), 1),  # a member missing
        ({}, {"a": 1}, None, (), 1),  # a member extra
        ({"a": 1}, {"a": "1"}, None, (), 1),  # types
        ({"a": 1}, {"a": True}, None, (), 1),
        ({"a": "V1"}, {"a": "V2"}, None, (), 1),  # a constant
        ({"a": [1, 2]}, {"a": [1]}, None, (), 1),  # a count
        ({"created": 1.5}, {"created": 9}, None, (), 0),  # a timestamp's value
        ({"created": 1.5}, {"created": "9"}, None, (), 1),  # ... but not its type
        ({"nonce": "3"}, {"nonce": "x"}, None, (), 0),
        ({"pipelineExecutionId": "e"}, {"pipelineExecutionId": "f"}, None, ["e"], 1),  # substituted: exact
        ({"arn": arn}, {"arn": arn.replace("111111111111", "123456789012")}, None, (), 0),  # an ARN's account
        ({"arn": arn}, {"arn": arn.replace("us-east-1", "eu-central-1")}, None, (), 1),  # ... not its region
        ({"arn": arn}, {"arn": arn + "x"}, None, (), 1),
        ({"x": {"__type": "T", "a": 1}}, {"x": {"a": 1}}, dict(exceptions=[("x.__type", "ignore", "")]), (), 0),
        ({"y": {"__type": "T"}}, {"y": {}}, dict(exceptions=[("x.__type", "ignore", "")]), (), 1),  # that path only
        ({"u": "x"}, {}, dict(exceptions=[("u", "absent", "")]), (), 0),
        ({"n": 1}, {"n": 1, "m": 2}, dict(exceptions=[("m", "newer", "")]), (), 0),  # a newer member
        ({"n": 1}, {"n": 1, "m": 2}, dict(exceptions=[("x.m", "newer", "")]), (), 1),  # that path only
        ({"n": 1}, {}, dict(exceptions=[("n", "newer", "")]), (), 1),  # ... and never a missing one
        ({"t": [1, 2]}, {"t": [2, 1]}, dict(exceptions=[("t", "unordered", "")]), (), 0),
        ({"t": [1, 2]}, {"t": [2, 3]}, dict(exceptions=[("t", "unordered", "")]), (), 2),
        ({"t": [1, 2]}, {"t": [1, 2, 3]}, dict(exceptions=[("t", "prefix", "")]), (), 0),
        ({"t": [1, 2]}, {"t": [2, 1, 3]}, dict(exceptions=[("t", "prefix", "")]), (), 2),
        ({"t": [1, 2]}, {"t": [1]}, dict(exceptions=[("t", "prefix", "")]), (), 1),
        ({"l": [{"k": "P/A/EXAMPLE"}]}, {"l": [{"k": "P/A/xyz"}]}, dict(pattern={"l[*].k": "P/A/[^/]+"}), (), 0),
        ({"l": [{"k": "P/A/EXAMPLE"}]}, {"l": [{"k": "Q/A/xyz"}]}, dict(pattern={"l[*].k": "P/A/[^/]+"}), (), 1),
        ({"l": [{"id": "EX"}]}, {"l": [{"id": "real"}]}, dict(volatile=["l[*].id"]), (), 0),
        ({"l": [{"id": "EX"}]}, {"l": [{"id": 1}]}, dict(volatile=["l[*].id"]), (), 1),
    ]
    for exp, got, spec, pinned, n in cases:
        found = diffs(exp, got, spec, pinned)
        assert len(found) == n, "self-test: %s vs %s: want %d differences, got %s" % (exp, got, n, found)
    assert substitute(["--nonce", "3", "13"], {"3": "n"}) == ["--nonce", "n", "13"]
    assert substitute({"a": "x-f4f4ff82-2d11-EXAMPLE"}, {"f4f4ff82-2d11-EXAMPLE": "id"}) == {"a": "x-id"}


# ----------------------------------------------------------------------------------------------
# Replaying


def substitute(value, subs):
    """value with each invented id replaced by the real one: whole strings for short ids (a nonce
    "3"), substrings for longer ones."""
    if isinstance(value, str):
        for old, new in subs.items():
            if value == old or (len(old) >= 6 and old in value):
                value = value.replace(old, new) if len(old) >= 6 else new
        return value
    if isinstance(value, list):
        return [substitute(v, subs) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, subs) for k, v in value.items()}
    return value


def replay(example, spec, server, examples, verbose):
    """Replay one example; (passed, lines to report)."""
    lines = []
    tmp = tempfile.mkdtemp(prefix="replay-")
    try:
        setup = Setup(server, examples, tmp)
        if example.command is None:
            return False, ["no command found in the example"]
        try:
            subs = spec["setup"](setup) if "setup" in spec else {}
        except Exception as e:  # noqa: BLE001 - any failure of the setup fails the example
            return False, ["setup failed: %s" % e]

        # The command, with the server's endpoint in place of any the example names.
        args = shlex.split(example.command)
        assert args[:2] == ["aws", "codepipeline"], args
        args = args[1:]
        i = 0
        while i < len(args):
            if args[i] == "--endpoint-url":
                del args[i:i + 2]
            else:
                i += 1
        if "command" in spec:
            args = spec["command"](args)
        if example.file_name:
            body = json.loads(example.file_text)
            if "file" in spec:
                body = spec["file"](body)
            body = substitute(body, subs)
            path = os.path.join(tmp, os.path.basename(example.file_name))
            with open(path, "w") as f:
                json.dump(body, f, indent=2)
            args = [a.replace("file://" + example.file_name, "file://" + path) for a in args]
        args = substitute(args, subs)

        # The answer expected.
        kind = example.output_kind()
        expected = None
        if kind == "json":
            text = example.output_text
            if "output" in spec:
                text = spec["output"](text)
            try:
                expected = json.loads(text)
            except ValueError as e:
                return False, ["the example's output is not JSON (%s) and has no repair in this script" % e]
        if "expected" in spec:
            expected = spec["expected"](expected, example, setup)
            kind = "json" if expected is not None else kind
        if kind == "prose":
            return False, ["the example describes its output in prose and this script derives none"]
        expected = substitute(expected, subs)

        if verbose:
            lines.append("$ aws --endpoint-url %s --output json %s" % (server.endpoint, " ".join(shlex.quote(a) for a in args)))
        rc, out, err = aws(server, *args)
        if rc != 0:
            return False, lines + ["the command failed (exit status %d): %s" % (rc, err.strip())]
        if kind == "empty":
            if out.strip():
                return False, lines + ["expected no output, got: %s" % out.strip()]
            return True, lines
        try:
            got = json.loads(out)
        except ValueError:
            return False, lines + ["the answer is not JSON: %r" % out]
        cmp = Comparison(spec, set(subs.values()))
        cmp.compare(expected, got)
        if verbose:
            for path, kind_, why in sorted(cmp.used):
                lines.append("allowed (%s) %s: %s" % (kind_, path, why))
        return not cmp.diffs, lines + cmp.diffs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--endpoint", help="the Sluice server to replay against")
    ap.add_argument("--self-test", action="store_true", help="check the comparison itself, then exit")
    ap.add_argument("--account-id", default=ACCOUNT, help="the account that server runs as")
    ap.add_argument("--region", default=REGION, help="the region that server runs in")
    ap.add_argument("--sluice", help="the sluice binary, to start the servers some examples need of their own")
    ap.add_argument("--only", action="append", help="replay only this example (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the commands and the exceptions that applied")
    opts = ap.parse_args()
    self_test()
    if opts.self_test:
        return 0
    if not opts.endpoint:
        ap.error("--endpoint is required")

    directory = examples_dir()
    examples = {}
    for f in sorted(os.listdir(directory)):
        if f.endswith(".rst"):
            with open(os.path.join(directory, f)) as fh:
                examples[f[:-4]] = Example(f[:-4], fh.read())
    unknown = sorted(set(examples) - set(EXAMPLES))
    for name in sorted(set(EXAMPLES) - set(examples)):
        print("note: this AWS CLI has no example %s any more" % name, file=sys.stderr)
    for name in opts.only or []:
        if name not in examples:
            ap.error("no example %s in %s" % (name, directory))
    shared = Server(opts.endpoint, opts.account_id, opts.region)
    passed = failed = 0
    for name, example in examples.items():
        if opts.only and name not in opts.only:
            continue
        spec = EXAMPLES.get(name, {})
        own = None
        try:
            if "server" in spec:
                if not opts.sluice:
                    ok, lines = False, ["needs a server of its own (account %s, region %s): pass --sluice" % spec["server"]]
                else:
                    own = start_server(opts.sluice, *spec["server"])
            if "server" not in spec or own:
                ok, lines = replay(example, spec, own or shared, examples, opts.verbose)
        except Exception as e:  # noqa: BLE001 - e.g. an example that no longer reads as its fixes expect
            ok, lines = False, ["replay failed: %s: %s" % (type(e).__name__, e)]
        finally:
            if own:
                own.stop()
        if name in unknown:
            lines.insert(0, "new example: this script has no setup for it")
        print("%s %s" % ("PASS" if ok else "FAIL", name))
        for line in lines:
            print("    " + line)
        sys.stdout.flush()
        passed += ok
        failed += not ok
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
