package catalog

import (
	"maps"
	"regexp"
	"slices"
	"testing"

	"github.com/sluicehq/sluice/internal/model"
)

// The service model's patterns for provider names and versions, and its length limit for
// configuration keys.
var (
	providerPattern = regexp.MustCompile(`^[0-9A-Za-z_-]{1,35}$`)
	versionPattern  = regexp.MustCompile(`^[0-9A-Za-z_-]{1,9}$`)
)

const maxConfigurationKey = 50

func TestActionTypesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, at := range ActionTypes() {
		id := string(at.Category) + "/" + string(at.Owner) + "/" + at.Provider + "/" + at.Version
		if seen[id] {
			t.Errorf("%s is listed more than once", id)
		}
		seen[id] = true
		if !slices.Contains(model.ActionCategory("").Values(), at.Category) {
			t.Errorf("%s: category %q is not one of the model's", id, at.Category)
		}
		if at.Owner != model.ActionOwnerAws && at.Owner != model.ActionOwnerThirdParty {
			t.Errorf("%s: the catalog holds only AWS and ThirdParty types, not %q", id, at.Owner)
		}
		if !providerPattern.MatchString(at.Provider) || !versionPattern.MatchString(at.Version) {
			t.Errorf("%s: provider or version does not match the model's pattern", id)
		}
		if at.MinInputs < 0 || at.MinInputs > at.MaxInputs || at.MinOutputs < 0 || at.MinOutputs > at.MaxOutputs {
			t.Errorf("%s: artifact bounds %d..%d in, %d..%d out", id, at.MinInputs, at.MaxInputs, at.MinOutputs, at.MaxOutputs)
		}
		if at.Category == model.ActionCategorySource && (at.MaxInputs != 0 || at.MinOutputs != 1 || at.MaxOutputs != 1) {
			t.Errorf("%s: a source action takes no input and produces exactly one output", id)
		}
		checkProperties(t, id, at.Properties)

		got, ok := LookupActionType(at.Category, at.Owner, at.Provider, at.Version)
		if !ok || got.Provider != at.Provider || got.Category != at.Category {
			t.Errorf("LookupActionType(%s) = %v, %v", id, got.Provider, ok)
		}
	}
	if _, ok := LookupActionType(model.ActionCategoryDeploy, model.ActionOwnerAws, "S3", "2"); ok {
		t.Error("LookupActionType found a version that does not exist")
	}
	if _, ok := LookupActionType(model.ActionCategoryInvoke, model.ActionOwnerAws, "S3", "1"); ok {
		t.Error("LookupActionType found S3 in the Invoke category")
	}
}

func checkProperties(t *testing.T, id string, props []Property) {
	t.Helper()
	names := map[string]bool{}
	queryable := 0
	for _, p := range props {
		if names[p.Name] {
			t.Errorf("%s: property %s is listed more than once", id, p.Name)
		}
		names[p.Name] = true
		if p.Name == "" || len(p.Name) > maxConfigurationKey {
			t.Errorf("%s: property name %q is empty or longer than the model allows", id, p.Name)
		}
		if p.Queryable {
			queryable++
			if !p.Required || p.Secret {
				t.Errorf("%s: queryable property %s must be required and not secret", id, p.Name)
			}
		}
	}
	if queryable > 1 {
		t.Errorf("%s: %d queryable properties, at most one is allowed", id, queryable)
	}
}

// typeSpec is what the User Guide's reference page says about one action type.
type typeSpec struct {
	category           model.ActionCategory
	owner              model.ActionOwner
	provider           string
	required, optional []string
	secret             []string
	minIn, maxIn       int
	minOut, maxOut     int
	v2Only             bool
}

// documented pins the types whose reference pages were checked, property by property. Each
// must be in the catalog with exactly these properties, counts and pipeline types.
var documented = []typeSpec{
	{category: model.ActionCategoryInvoke, owner: model.ActionOwnerAws, provider: "InspectorScan",
		required: []string{"InspectorRunMode"},
		optional: []string{"ECRRepositoryName", "ImageTag", "CriticalThreshold", "HighThreshold", "MediumThreshold", "LowThreshold"},
		maxIn:    1, minOut: 1, maxOut: 1},
	{category: model.ActionCategoryDeploy, owner: model.ActionOwnerAws, provider: "EC2",
		required: []string{"InstanceTagKey", "InstanceType"},
		optional: []string{"InstanceTagValue", "TargetDirectory", "DeploySpec", "MaxBatch", "MaxError", "TargetGroupNameList", "PreScript", "PostScript"},
		minIn:    1, maxIn: 1, v2Only: true},
	{category: model.ActionCategoryDeploy, owner: model.ActionOwnerAws, provider: "Lambda",
		required: []string{"FunctionName"},
		optional: []string{"FunctionAlias", "PublishedTargetVersion", "DeployStrategy", "Alarms"},
		maxIn:    1, v2Only: true},
	{category: model.ActionCategoryInvoke, owner: model.ActionOwnerAws, provider: "CodePipeline",
		required: []string{"PipelineName"},
		optional: []string{"SourceRevisions", "Variables"},
		v2Only:   true},
	{category: model.ActionCategoryBuild, owner: model.ActionOwnerAws, provider: "ECRBuildAndPublish",
		required: []string{"ECRRepositoryName"},
		optional: []string{"DockerFilePath", "ImageTags", "RegistryType"},
		minIn:    1, maxIn: 1, v2Only: true},
	{category: model.ActionCategoryCompute, owner: model.ActionOwnerAws, provider: "Commands",
		minIn: 1, maxIn: 10, maxOut: 1, v2Only: true},
	{category: model.ActionCategoryDeploy, owner: model.ActionOwnerAws, provider: "EKS",
		required: []string{"ClusterName"},
		optional: []string{"HelmReleaseName", "HelmChartLocation", "HelmValuesFiles", "ManifestFiles", "Namespace", "Subnets", "SecurityGroupIds"},
		minIn:    1, maxIn: 1, v2Only: true},
	{category: model.ActionCategoryDeploy, owner: model.ActionOwnerAws, provider: "CodeDeployToECS",
		required: []string{"ApplicationName", "DeploymentGroupName", "TaskDefinitionTemplateArtifact", "AppSpecTemplateArtifact"},
		optional: []string{"AppSpecTemplatePath", "TaskDefinitionTemplatePath",
			"Image1ArtifactName", "Image1ContainerName", "Image2ArtifactName", "Image2ContainerName",
			"Image3ArtifactName", "Image3ContainerName", "Image4ArtifactName", "Image4ContainerName"},
		minIn: 1, maxIn: 5},
	{category: model.ActionCategoryDeploy, owner: model.ActionOwnerAws, provider: "CloudFormationStackSet",
		required: []string{"StackSetName", "TemplatePath"},
		optional: []string{"Description", "Parameters", "Capabilities", "PermissionModel", "AdministrationRoleArn", "ExecutionRoleName",
			"OrganizationsAutoDeployment", "DeploymentTargets", "Regions", "FailureTolerancePercentage", "MaxConcurrentPercentage"},
		minIn: 1, maxIn: 3},
	{category: model.ActionCategoryDeploy, owner: model.ActionOwnerAws, provider: "CloudFormationStackInstances",
		required: []string{"StackSetName", "Regions"},
		optional: []string{"DeploymentTargets", "ParameterOverrides", "FailureTolerancePercentage", "MaxConcurrentPercentage"},
		maxIn:    2},
	{category: model.ActionCategoryInvoke, owner: model.ActionOwnerAws, provider: "StepFunctions",
		required: []string{"StateMachineArn"},
		optional: []string{"ExecutionNamePrefix", "InputType", "Input"},
		maxIn:    1, maxOut: 1},
	{category: model.ActionCategoryDeploy, owner: model.ActionOwnerAws, provider: "AppConfig",
		required: []string{"Application", "Environment", "ConfigurationProfile", "InputArtifactConfigurationPath"},
		optional: []string{"DeploymentStrategy"},
		minIn:    1, maxIn: 1},
	{category: model.ActionCategoryDeploy, owner: model.ActionOwnerAws, provider: "ElasticBeanstalk",
		required: []string{"ApplicationName", "EnvironmentName"},
		minIn:    1, maxIn: 1},
	{category: model.ActionCategoryDeploy, owner: model.ActionOwnerAws, provider: "OpsWorks",
		required: []string{"Stack", "App"},
		optional: []string{"Layer"},
		minIn:    1, maxIn: 1, maxOut: 1},
	{category: model.ActionCategoryDeploy, owner: model.ActionOwnerAws, provider: "ServiceCatalog",
		required: []string{"ProductId"},
		optional: []string{"TemplateFilePath", "ProductVersionName", "ProductType", "ProductVersionDescription", "ConfigurationFilePath"},
		minIn:    1, maxIn: 1},
	{category: model.ActionCategoryDeploy, owner: model.ActionOwnerThirdParty, provider: "AlexaSkillsKit",
		required: []string{"ClientId", "SkillId"},
		secret:   []string{"ClientSecret", "RefreshToken"},
		minIn:    1, maxIn: 2},
	{category: model.ActionCategoryInvoke, owner: model.ActionOwnerThirdParty, provider: "Snyk",
		minIn: 1, maxIn: 1, minOut: 1, maxOut: 1},
	{category: model.ActionCategorySource, owner: model.ActionOwnerThirdParty, provider: "GitHub",
		required: []string{"Owner", "Repo", "Branch"},
		optional: []string{"PollForSourceChanges"},
		secret:   []string{"OAuthToken"},
		minOut:   1, maxOut: 1},
	{category: model.ActionCategorySource, owner: model.ActionOwnerAws, provider: "S3",
		required: []string{"S3Bucket", "S3ObjectKey"},
		optional: []string{"AllowOverrideForS3ObjectKey", "PollForSourceChanges"},
		minOut:   1, maxOut: 1},
	{category: model.ActionCategoryTest, owner: model.ActionOwnerAws, provider: "DeviceFarm",
		required: []string{"AppType", "ProjectId", "App", "DevicePoolArn", "TestType"},
		optional: []string{"TestSpec", "RadioBluetoothEnabled", "RecordAppPerformanceData", "RecordVideo", "RadioWifiEnabled",
			"RadioNfcEnabled", "RadioGpsEnabled", "Test", "FuzzEventCount", "FuzzEventThrottle", "FuzzRandomizerSeed",
			"CustomHostMachineArtifacts", "CustomDeviceArtifacts", "UnmeteredDevicesOnly", "JobTimeoutMinutes", "Latitude", "Longitude"},
		minIn: 1, maxIn: 1},
	{category: model.ActionCategoryDeploy, owner: model.ActionOwnerAws, provider: "CloudFormation",
		required: []string{"ActionMode", "StackName"},
		optional: []string{"Capabilities", "ChangeSetName", "RoleArn", "TemplatePath", "OutputFileName", "ParameterOverrides", "TemplateConfiguration"},
		maxIn:    10, maxOut: 1},
	{category: model.ActionCategoryBuild, owner: model.ActionOwnerAws, provider: "CodeBuild",
		required: []string{"ProjectName"},
		optional: []string{"PrimarySource", "BatchEnabled", "CombineArtifacts", "EnvironmentVariables"},
		minIn:    1, maxIn: 5, maxOut: 5},
}

func TestDocumentedActionTypes(t *testing.T) {
	for _, want := range documented {
		id := string(want.category) + "/" + string(want.owner) + "/" + want.provider
		at, ok := LookupActionType(want.category, want.owner, want.provider, "1")
		if !ok {
			t.Errorf("%s/1 is missing", id)
			continue
		}
		var required, optional, secrets []string
		for _, p := range at.Properties {
			switch {
			case p.Secret:
				secrets = append(secrets, p.Name)
				if !p.Required {
					t.Errorf("%s: secret %s should be required", id, p.Name)
				}
			case p.Required:
				required = append(required, p.Name)
			default:
				optional = append(optional, p.Name)
			}
		}
		sameSet(t, id+" required properties", required, want.required)
		sameSet(t, id+" optional properties", optional, want.optional)
		sameSet(t, id+" secret properties", secrets, want.secret)
		if at.MinInputs != want.minIn || at.MaxInputs != want.maxIn || at.MinOutputs != want.minOut || at.MaxOutputs != want.maxOut {
			t.Errorf("%s: artifacts %d..%d in, %d..%d out; the reference says %d..%d in, %d..%d out", id,
				at.MinInputs, at.MaxInputs, at.MinOutputs, at.MaxOutputs, want.minIn, want.maxIn, want.minOut, want.maxOut)
		}
		if at.V2Only != want.v2Only {
			t.Errorf("%s: V2Only = %v, want %v", id, at.V2Only, want.v2Only)
		}
	}
}

// TestV2OnlyTypes: the reference pages that say "only supported for V2 type pipelines" are
// exactly these.
func TestV2OnlyTypes(t *testing.T) {
	var got []string
	for _, at := range ActionTypes() {
		if at.V2Only {
			got = append(got, string(at.Category)+"/"+at.Provider)
		}
	}
	sameSet(t, "V2-only types", got, []string{
		"Build/ECRBuildAndPublish", "Compute/Commands", "Deploy/EC2", "Deploy/EKS", "Deploy/Lambda", "Invoke/CodePipeline",
	})
}

func TestRuleTypesAreTheDocumentedProviders(t *testing.T) {
	required := map[string][]string{
		"CloudWatchAlarm":  {"AlarmName"},
		"CodeBuild":        {"ProjectName"},
		"Commands":         nil,
		"DeploymentWindow": {"Cron"},
		"LambdaInvoke":     {"FunctionName"},
		"VariableCheck":    {"Operator", "Value", "Variable"},
	}
	optional := map[string][]string{
		"CloudWatchAlarm":  {"AlarmStates", "WaitTime"},
		"CodeBuild":        {"PrimarySource", "BatchEnabled", "CombineArtifacts", "EnvironmentVariables"},
		"DeploymentWindow": {"TimeZone"},
		"LambdaInvoke":     {"UserParameters"},
	}
	var providers []string
	for _, rt := range RuleTypes() {
		if slices.Contains(providers, rt.Provider) {
			t.Errorf("rule type %s is listed more than once", rt.Provider)
		}
		providers = append(providers, rt.Provider)
		if rt.Version != "1" {
			t.Errorf("rule type %s has version %q; every documented rule is version 1", rt.Provider, rt.Version)
		}
		if rt.MinInputs < 0 || rt.MinInputs > rt.MaxInputs {
			t.Errorf("rule type %s: input bounds %d..%d", rt.Provider, rt.MinInputs, rt.MaxInputs)
		}
		checkProperties(t, "rule "+rt.Provider, rt.Properties)
		var req, opt []string
		for _, p := range rt.Properties {
			if p.Secret {
				t.Errorf("rule type %s: no documented rule property is secret, %s is", rt.Provider, p.Name)
			}
			if p.Required {
				req = append(req, p.Name)
			} else {
				opt = append(opt, p.Name)
			}
		}
		sameSet(t, "rule "+rt.Provider+" required properties", req, required[rt.Provider])
		sameSet(t, "rule "+rt.Provider+" optional properties", opt, optional[rt.Provider])
		if got, ok := LookupRuleType(rt.Provider, rt.Version); !ok || got.Provider != rt.Provider {
			t.Errorf("LookupRuleType(%s, %s) = %v, %v", rt.Provider, rt.Version, got.Provider, ok)
		}
	}
	sameSet(t, "rule providers", providers, slices.Collect(maps.Keys(required)))
	if _, ok := LookupRuleType("CloudWatchAlarm", "2"); ok {
		t.Error("LookupRuleType found a version that does not exist")
	}
}

func TestModelConversions(t *testing.T) {
	at, _ := LookupActionType(model.ActionCategoryDeploy, model.ActionOwnerThirdParty, "AlexaSkillsKit", "1")
	m := at.Model()
	if *m.Id.Category != model.ActionCategoryDeploy || *m.Id.Owner != model.ActionOwnerThirdParty || *m.Id.Provider != "AlexaSkillsKit" || *m.Id.Version != "1" {
		t.Errorf("Model id = %v/%v/%v/%v", *m.Id.Category, *m.Id.Owner, *m.Id.Provider, *m.Id.Version)
	}
	if *m.InputArtifactDetails.MinimumCount != 1 || *m.InputArtifactDetails.MaximumCount != 2 ||
		*m.OutputArtifactDetails.MinimumCount != 0 || *m.OutputArtifactDetails.MaximumCount != 0 {
		t.Errorf("Model artifacts = %+v, %+v", m.InputArtifactDetails, m.OutputArtifactDetails)
	}
	if len(m.ActionConfigurationProperties) != len(at.Properties) {
		t.Fatalf("Model has %d properties, the type %d", len(m.ActionConfigurationProperties), len(at.Properties))
	}
	for i, p := range m.ActionConfigurationProperties {
		want := at.Properties[i]
		if *p.Name != want.Name || *p.Required != want.Required || *p.Key != want.Key || *p.Secret != want.Secret || p.Queryable != nil || p.Type != nil {
			t.Errorf("Model property %d = %+v, want %+v", i, p, want)
		}
	}

	for _, rt := range RuleTypes() {
		m := rt.Model()
		if *m.Id.Category != model.RuleCategoryRule || *m.Id.Owner != model.RuleOwnerAws || *m.Id.Provider != rt.Provider || *m.Id.Version != rt.Version {
			t.Errorf("rule Model id = %v/%v/%v/%v", *m.Id.Category, *m.Id.Owner, *m.Id.Provider, *m.Id.Version)
		}
		if *m.InputArtifactDetails.MinimumCount != rt.MinInputs || *m.InputArtifactDetails.MaximumCount != rt.MaxInputs {
			t.Errorf("rule %s Model inputs = %+v", rt.Provider, m.InputArtifactDetails)
		}
		if len(m.RuleConfigurationProperties) != len(rt.Properties) {
			t.Errorf("rule %s Model has %d properties, the type %d", rt.Provider, len(m.RuleConfigurationProperties), len(rt.Properties))
		}
	}

	typed := RuleType{Provider: "X", Version: "1", Properties: []Property{{Name: "N", Required: true, Queryable: true, Type: model.ActionConfigurationPropertyTypeNumber}}}
	p := typed.Model().RuleConfigurationProperties[0]
	if p.Type == nil || *p.Type != model.RuleConfigurationPropertyTypeNumber || p.Queryable == nil || !*p.Queryable {
		t.Errorf("rule Model property = %+v, want type Number and queryable", p)
	}
}

func sameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(g, w) {
		t.Errorf("%s = %v, want %v", what, g, w)
	}
}

func TestExpandURL(t *testing.T) {
	commit, ok := LookupActionType(model.ActionCategorySource, model.ActionOwnerAws, "CodeCommit", "1")
	if !ok {
		t.Fatal("no CodeCommit source")
	}
	config := map[string]string{"RepositoryName": "app", "BranchName": "main"}
	if got, want := ExpandURL(commit.EntityURL, "eu-west-1", config, ""), "https://console.aws.amazon.com/codecommit/home?region=eu-west-1#/repository/app/browse/main/--/"; got != want {
		t.Errorf("entity URL %q, want %q", got, want)
	}
	if got, want := ExpandURL(commit.RevisionURL, "eu-west-1", config, "abc123"), "https://console.aws.amazon.com/codecommit/home?region=eu-west-1#/repository/app/commit/abc123"; got != want {
		t.Errorf("revision URL %q, want %q", got, want)
	}
	// A placeholder left unfilled gives no link rather than a wrong one.
	if got := ExpandURL(commit.RevisionURL, "eu-west-1", config, ""); got != "" {
		t.Errorf("revision URL without a revision: %q", got)
	}
	if got := ExpandURL("https://ci.example/{Config:Token}", "us-east-1", map[string]string{"Token": SecretMask}, ""); got != "" {
		t.Errorf("template naming a masked secret: %q", got)
	}
	if got := ExpandURL("https://ci.example/{Config:Missing}", "us-east-1", config, ""); got != "" {
		t.Errorf("template with a missing property: %q", got)
	}
}
