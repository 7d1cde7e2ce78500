// Package catalog lists the action types and rule types that CodePipeline itself provides (owners
// AWS and ThirdParty): their configuration properties and how many artifacts they take. It is the
// reference the pipeline validator checks declarations against and ListActionTypes and
// ListRuleTypes answer from. Custom action types live in the store, not here.
package catalog

import (
	"maps"
	"regexp"
	"strings"

	"github.com/sluicehq/sluice/internal/model"
)

// Property is a configuration property of an action or rule type.
type Property struct {
	Name      string
	Required  bool
	Key       bool
	Secret    bool
	Queryable bool
	Type      model.ActionConfigurationPropertyType
}

// ActionType is an action type CodePipeline provides.
type ActionType struct {
	Category   model.ActionCategory
	Owner      model.ActionOwner
	Provider   string
	Version    string
	Properties []Property
	// MinInputs..MaxOutputs bound the artifacts an action of this type declares.
	MinInputs, MaxInputs   int
	MinOutputs, MaxOutputs int
	// V2Only types can only appear in V2 pipelines.
	V2Only bool
	// Commands: the action declares the commands it runs (and output variables), which no other
	// type may.
	Commands bool
	// Approval: a run waits for PutApprovalResult (with a token and a timeout) instead of a job.
	Approval bool
	// EntityURL and RevisionURL are the links GetPipelineState shows for an action of this type:
	// its resource, and its current revision (see ExpandURL for the placeholders). For AWS types
	// they are the console's, as AWS gives them; a custom type's come from its settings.
	EntityURL, RevisionURL string
}

// RuleType is a rule type CodePipeline provides for stage conditions.
type RuleType struct {
	Provider   string
	Version    string
	Properties []Property
	MinInputs  int
	MaxInputs  int
	// Commands: the rule declares the commands it runs, which no other rule type may.
	Commands bool
}

func req(name string) Property    { return Property{Name: name, Required: true, Key: true} }
func opt(name string) Property    { return Property{Name: name} }
func secret(name string) Property { return Property{Name: name, Required: true, Secret: true} }

// The action types below follow the CodePipeline User Guide's "Action structure reference" (one
// page per provider, action-reference-<Provider>), "Valid action providers in CodePipeline"
// (actions-valid-providers) and "Valid configuration parameters for each provider type"
// (structure-configuration-examples). A property the reference marks "Conditional" (required
// only in some modes, such as CloudFormation's TemplatePath or EKS's HelmChartLocation) is
// optional here: the validator checks presence, not modes. Artifact counts are the ones the
// provider's page gives; V2Only marks the types its page says are only for V2 pipelines.
// Console links that more than one type uses.
const (
	connectionURL = "https://{Region}.console.aws.amazon.com/codesuite/settings/connections/redirect?connectionArn={Config:ConnectionArn}&"
	codeBuildURL  = "https://console.aws.amazon.com/codebuild/home?region={Region}#/projects/{Config:ProjectName}/view"
)

var actionTypes = []ActionType{
	// Source

	// action-reference-S3
	{Category: model.ActionCategorySource, Owner: model.ActionOwnerAws, Provider: "S3", Version: "1",
		Properties: []Property{req("S3Bucket"), req("S3ObjectKey"), opt("AllowOverrideForS3ObjectKey"), opt("PollForSourceChanges")},
		MinOutputs: 1, MaxOutputs: 1,
		EntityURL: "https://console.aws.amazon.com/s3/home?#"},
	// action-reference-ECR
	{Category: model.ActionCategorySource, Owner: model.ActionOwnerAws, Provider: "ECR", Version: "1",
		Properties: []Property{req("RepositoryName"), opt("ImageTag")},
		MinOutputs: 1, MaxOutputs: 1},
	// action-reference-CodeCommit
	{Category: model.ActionCategorySource, Owner: model.ActionOwnerAws, Provider: "CodeCommit", Version: "1",
		Properties: []Property{req("RepositoryName"), req("BranchName"), opt("PollForSourceChanges"), opt("OutputArtifactFormat")},
		MinOutputs: 1, MaxOutputs: 1,
		EntityURL: "https://console.aws.amazon.com/codecommit/home?region={Region}#/repository/{Config:RepositoryName}/browse/{Config:BranchName}/--/", RevisionURL: "https://console.aws.amazon.com/codecommit/home?region={Region}#/repository/{Config:RepositoryName}/commit/{RevisionId}"},
	// action-reference-CodestarConnectionSource
	{Category: model.ActionCategorySource, Owner: model.ActionOwnerAws, Provider: "CodeStarSourceConnection", Version: "1",
		Properties: []Property{req("ConnectionArn"), req("FullRepositoryId"), req("BranchName"), opt("OutputArtifactFormat"), opt("DetectChanges")},
		MinOutputs: 1, MaxOutputs: 1,
		EntityURL: connectionURL + "referenceType=BRANCH&FullRepositoryId={Config:FullRepositoryId}&Branch={Config:BranchName}", RevisionURL: connectionURL + "referenceType=COMMIT&FullRepositoryId={Config:FullRepositoryId}&Commit={RevisionId}"},
	// appendix-github-oauth (GitHub via OAuth app, version 1)
	{Category: model.ActionCategorySource, Owner: model.ActionOwnerThirdParty, Provider: "GitHub", Version: "1",
		Properties: []Property{req("Owner"), req("Repo"), req("Branch"), secret("OAuthToken"), opt("PollForSourceChanges")},
		MinOutputs: 1, MaxOutputs: 1,
		EntityURL: "https://github.com/{Config:Owner}/{Config:Repo}/tree/{Config:Branch}", RevisionURL: "https://github.com/{Config:Owner}/{Config:Repo}/commit/{RevisionId}"},

	// Build and Test

	// action-reference-CodeBuild (PrimarySource: Conditional)
	{Category: model.ActionCategoryBuild, Owner: model.ActionOwnerAws, Provider: "CodeBuild", Version: "1",
		Properties: codeBuildProperties(),
		MinInputs:  1, MaxInputs: 5, MaxOutputs: 5,
		EntityURL: codeBuildURL},
	{Category: model.ActionCategoryTest, Owner: model.ActionOwnerAws, Provider: "CodeBuild", Version: "1",
		Properties: codeBuildProperties(),
		MinInputs:  1, MaxInputs: 5, MaxOutputs: 5,
		EntityURL: codeBuildURL},
	// action-reference-ECRBuildAndPublish
	{Category: model.ActionCategoryBuild, Owner: model.ActionOwnerAws, Provider: "ECRBuildAndPublish", Version: "1",
		Properties: []Property{req("ECRRepositoryName"), opt("DockerFilePath"), opt("ImageTags"), opt("RegistryType")},
		MinInputs:  1, MaxInputs: 1, V2Only: true},
	// action-reference-DeviceFarm (TestSpec: Conditional, for custom-mode tests)
	{Category: model.ActionCategoryTest, Owner: model.ActionOwnerAws, Provider: "DeviceFarm", Version: "1",
		Properties: []Property{req("AppType"), req("ProjectId"), req("App"), opt("TestSpec"), req("DevicePoolArn"), req("TestType"),
			opt("RadioBluetoothEnabled"), opt("RecordAppPerformanceData"), opt("RecordVideo"), opt("RadioWifiEnabled"), opt("RadioNfcEnabled"),
			opt("RadioGpsEnabled"), opt("Test"), opt("FuzzEventCount"), opt("FuzzEventThrottle"), opt("FuzzRandomizerSeed"),
			opt("CustomHostMachineArtifacts"), opt("CustomDeviceArtifacts"), opt("UnmeteredDevicesOnly"), opt("JobTimeoutMinutes"),
			opt("Latitude"), opt("Longitude")},
		MinInputs: 1, MaxInputs: 1},

	// Deploy

	// action-reference-S3Deploy (ObjectKey: required when Extract is false)
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "S3", Version: "1",
		Properties: []Property{req("BucketName"), req("Extract"), opt("ObjectKey"), opt("KMSEncryptionKeyARN"), opt("CannedACL"), opt("CacheControl")},
		MinInputs:  1, MaxInputs: 1,
		EntityURL: "https://console.aws.amazon.com/s3/home?#"},
	// action-reference-CloudFormation (Capabilities, ChangeSetName, RoleArn, TemplatePath: Conditional)
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "CloudFormation", Version: "1",
		Properties: []Property{req("ActionMode"), req("StackName"), opt("Capabilities"), opt("ChangeSetName"), opt("RoleArn"), opt("TemplatePath"),
			opt("OutputFileName"), opt("ParameterOverrides"), opt("TemplateConfiguration")},
		MaxInputs: 10, MaxOutputs: 1},
	// action-reference-StackSets, CloudFormationStackSet
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "CloudFormationStackSet", Version: "1",
		Properties: []Property{req("StackSetName"), opt("Description"), req("TemplatePath"), opt("Parameters"), opt("Capabilities"), opt("PermissionModel"),
			opt("AdministrationRoleArn"), opt("ExecutionRoleName"), opt("OrganizationsAutoDeployment"), opt("DeploymentTargets"), opt("Regions"),
			opt("FailureTolerancePercentage"), opt("MaxConcurrentPercentage")},
		MinInputs: 1, MaxInputs: 3},
	// action-reference-StackSets, CloudFormationStackInstances
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "CloudFormationStackInstances", Version: "1",
		Properties: []Property{req("StackSetName"), opt("DeploymentTargets"), req("Regions"), opt("ParameterOverrides"),
			opt("FailureTolerancePercentage"), opt("MaxConcurrentPercentage")},
		MaxInputs: 2},
	// action-reference-CodeDeploy
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "CodeDeploy", Version: "1",
		Properties: []Property{req("ApplicationName"), req("DeploymentGroupName")},
		MinInputs:  1, MaxInputs: 1,
		EntityURL: "https://console.aws.amazon.com/codedeploy/home?#/applications/{Config:ApplicationName}/deployment-groups/{Config:DeploymentGroupName}"},
	// action-reference-ECSbluegreen (Image<Number>ArtifactName and Image<Number>ContainerName, <Number> 1 to 4)
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "CodeDeployToECS", Version: "1",
		Properties: []Property{req("ApplicationName"), req("DeploymentGroupName"), req("TaskDefinitionTemplateArtifact"), req("AppSpecTemplateArtifact"),
			opt("AppSpecTemplatePath"), opt("TaskDefinitionTemplatePath"),
			opt("Image1ArtifactName"), opt("Image1ContainerName"), opt("Image2ArtifactName"), opt("Image2ContainerName"),
			opt("Image3ArtifactName"), opt("Image3ContainerName"), opt("Image4ArtifactName"), opt("Image4ContainerName")},
		MinInputs: 1, MaxInputs: 5},
	// action-reference-ECS
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "ECS", Version: "1",
		Properties: []Property{req("ClusterName"), req("ServiceName"), opt("FileName"), opt("DeploymentTimeout")},
		MinInputs:  1, MaxInputs: 1},
	// action-reference-EKS (HelmReleaseName, HelmChartLocation: required for Helm; ManifestFiles: required for kubectl)
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "EKS", Version: "1",
		Properties: []Property{req("ClusterName"), opt("HelmReleaseName"), opt("HelmChartLocation"), opt("HelmValuesFiles"), opt("ManifestFiles"),
			opt("Namespace"), opt("Subnets"), opt("SecurityGroupIds")},
		MinInputs: 1, MaxInputs: 1, V2Only: true},
	// action-reference-EC2Deploy (TargetDirectory: required with scripts; DeploySpec: required with a deploy
	// spec file; PostScript: the page says required, but a DeploySpec configuration has none)
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "EC2", Version: "1",
		Properties: []Property{req("InstanceTagKey"), opt("InstanceTagValue"), req("InstanceType"), opt("TargetDirectory"), opt("DeploySpec"),
			opt("MaxBatch"), opt("MaxError"), opt("TargetGroupNameList"), opt("PreScript"), opt("PostScript")},
		MinInputs: 1, MaxInputs: 1, V2Only: true},
	// action-reference-LambdaDeploy (the input artifact is optional: PublishedTargetVersion is required
	// when there is none)
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "Lambda", Version: "1",
		Properties: []Property{req("FunctionName"), opt("FunctionAlias"), opt("PublishedTargetVersion"), opt("DeployStrategy"), opt("Alarms")},
		MaxInputs:  1, V2Only: true},
	// action-reference-Beanstalk
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "ElasticBeanstalk", Version: "1",
		Properties: []Property{req("ApplicationName"), req("EnvironmentName")},
		MinInputs:  1, MaxInputs: 1},
	// action-reference-OpsWorks
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "OpsWorks", Version: "1",
		Properties: []Property{req("Stack"), req("App"), opt("Layer")},
		MinInputs:  1, MaxInputs: 1, MaxOutputs: 1},
	// structure-configuration-examples: a template with its version fields, or a configuration file
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "ServiceCatalog", Version: "1",
		Properties: []Property{req("ProductId"), opt("TemplateFilePath"), opt("ProductVersionName"), opt("ProductType"), opt("ProductVersionDescription"),
			opt("ConfigurationFilePath")},
		MinInputs: 1, MaxInputs: 1},
	// action-reference-AppConfig
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "AppConfig", Version: "1",
		Properties: []Property{req("Application"), req("Environment"), req("ConfigurationProfile"), req("InputArtifactConfigurationPath"), opt("DeploymentStrategy")},
		MinInputs:  1, MaxInputs: 1},
	// structure-configuration-examples and reference-action-artifacts
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerThirdParty, Provider: "AlexaSkillsKit", Version: "1",
		Properties: []Property{req("ClientId"), secret("ClientSecret"), secret("RefreshToken"), req("SkillId")},
		MinInputs:  1, MaxInputs: 2},

	// Approval

	// approvals-action-add and structure-configuration-examples
	{Category: model.ActionCategoryApproval, Owner: model.ActionOwnerAws, Provider: "Manual", Version: "1",
		Properties: []Property{opt("NotificationArn"), opt("CustomData"), opt("ExternalEntityLink")}, Approval: true},

	// Invoke

	// action-reference-Lambda
	{Category: model.ActionCategoryInvoke, Owner: model.ActionOwnerAws, Provider: "Lambda", Version: "1",
		Properties: []Property{req("FunctionName"), opt("UserParameters")},
		MaxInputs:  5, MaxOutputs: 5},
	// action-reference-StepFunctions (Input: Conditional)
	{Category: model.ActionCategoryInvoke, Owner: model.ActionOwnerAws, Provider: "StepFunctions", Version: "1",
		Properties: []Property{req("StateMachineArn"), opt("ExecutionNamePrefix"), opt("InputType"), opt("Input")},
		MaxInputs:  1, MaxOutputs: 1},
	// action-reference-PipelineInvoke: starts another pipeline
	{Category: model.ActionCategoryInvoke, Owner: model.ActionOwnerAws, Provider: "CodePipeline", Version: "1",
		Properties: []Property{req("PipelineName"), opt("SourceRevisions"), opt("Variables")},
		V2Only:     true},
	// action-reference-InspectorScan (ECRRepositoryName and ImageTag are for ECRImageScan; source
	// code scans take the code as their input artifact)
	{Category: model.ActionCategoryInvoke, Owner: model.ActionOwnerAws, Provider: "InspectorScan", Version: "1",
		Properties: []Property{req("InspectorRunMode"), opt("ECRRepositoryName"), opt("ImageTag"),
			opt("CriticalThreshold"), opt("HighThreshold"), opt("MediumThreshold"), opt("LowThreshold")},
		MaxInputs: 1, MinOutputs: 1, MaxOutputs: 1},
	// action-reference-Snyk: the page documents no configuration properties
	{Category: model.ActionCategoryInvoke, Owner: model.ActionOwnerThirdParty, Provider: "Snyk", Version: "1",
		MinInputs: 1, MaxInputs: 1, MinOutputs: 1, MaxOutputs: 1},

	// Compute

	// action-reference-Commands: the commands, output variables and files are fields of the action
	// declaration, not configuration properties
	{Category: model.ActionCategoryCompute, Owner: model.ActionOwnerAws, Provider: "Commands", Version: "1",
		MinInputs: 1, MaxInputs: 10, MaxOutputs: 1, V2Only: true, Commands: true},
}

// codeBuildProperties are the configuration properties of the CodeBuild build and test actions.
func codeBuildProperties() []Property {
	return []Property{req("ProjectName"), opt("PrimarySource"), opt("BatchEnabled"), opt("CombineArtifacts"), opt("EnvironmentVariables")}
}

// The rule types follow the User Guide's "Rule structure reference" (rule-reference and one page
// per provider, rule-reference-<Provider>). Those pages give no input artifact counts; the counts
// below are Sluice's reading of what each rule takes (none for the ones that read no files).
var ruleTypes = []RuleType{
	// rule-reference-CloudWatchAlarm
	{Provider: "CloudWatchAlarm", Version: "1", Properties: []Property{req("AlarmName"), opt("AlarmStates"), opt("WaitTime")}},
	// rule-reference-CodeBuild (PrimarySource: Conditional)
	{Provider: "CodeBuild", Version: "1", Properties: codeBuildProperties(), MinInputs: 1, MaxInputs: 5},
	// rule-reference-Commands: the commands are a field of the rule declaration
	{Provider: "Commands", Version: "1", MaxInputs: 1, Commands: true},
	// rule-reference-DeploymentWindow
	{Provider: "DeploymentWindow", Version: "1", Properties: []Property{req("Cron"), opt("TimeZone")}},
	// rule-reference-LambdaInvoke
	{Provider: "LambdaInvoke", Version: "1", Properties: []Property{req("FunctionName"), opt("UserParameters")}, MaxInputs: 5},
	// rule-reference-VariableCheck
	{Provider: "VariableCheck", Version: "1", Properties: []Property{req("Variable"), req("Value"), req("Operator")}},
}

// ActionTypes returns the action types CodePipeline provides, in a stable order.
func ActionTypes() []ActionType { return actionTypes }

// LookupActionType returns the provided action type with the given identity.
func LookupActionType(category model.ActionCategory, owner model.ActionOwner, provider, version string) (ActionType, bool) {
	for _, t := range actionTypes {
		if t.Category == category && t.Owner == owner && t.Provider == provider && t.Version == version {
			return t, true
		}
	}
	return ActionType{}, false
}

// RuleTypes returns the rule types CodePipeline provides.
func RuleTypes() []RuleType { return ruleTypes }

// LookupRuleType returns the rule type with the given provider and version.
func LookupRuleType(provider, version string) (RuleType, bool) {
	for _, t := range ruleTypes {
		if t.Provider == provider && t.Version == version {
			return t, true
		}
	}
	return RuleType{}, false
}

// Model returns t as ListActionTypes describes it.
func (t ActionType) Model() model.ActionType {
	props := make([]model.ActionConfigurationProperty, len(t.Properties))
	for i, p := range t.Properties {
		props[i] = p.model()
	}
	return model.ActionType{
		Id:                            &model.ActionTypeId{Category: new(t.Category), Owner: new(t.Owner), Provider: new(t.Provider), Version: new(t.Version)},
		ActionConfigurationProperties: props,
		InputArtifactDetails:          &model.ArtifactDetails{MinimumCount: new(t.MinInputs), MaximumCount: new(t.MaxInputs)},
		OutputArtifactDetails:         &model.ArtifactDetails{MinimumCount: new(t.MinOutputs), MaximumCount: new(t.MaxOutputs)},
	}
}

// Model returns t as ListRuleTypes describes it.
func (t RuleType) Model() model.RuleType {
	props := make([]model.RuleConfigurationProperty, len(t.Properties))
	for i, p := range t.Properties {
		props[i] = model.RuleConfigurationProperty{Name: new(p.Name), Required: new(p.Required), Key: new(p.Key), Secret: new(p.Secret)}
		if p.Queryable {
			props[i].Queryable = new(true)
		}
		if p.Type != "" {
			props[i].Type = new(model.RuleConfigurationPropertyType(p.Type))
		}
	}
	return model.RuleType{
		Id:                          &model.RuleTypeId{Category: new(model.RuleCategoryRule), Owner: new(model.RuleOwnerAws), Provider: new(t.Provider), Version: new(t.Version)},
		RuleConfigurationProperties: props,
		InputArtifactDetails:        &model.ArtifactDetails{MinimumCount: new(t.MinInputs), MaximumCount: new(t.MaxInputs)},
	}
}

func (p Property) model() model.ActionConfigurationProperty {
	m := model.ActionConfigurationProperty{Name: new(p.Name), Required: new(p.Required), Key: new(p.Key), Secret: new(p.Secret)}
	if p.Queryable {
		m.Queryable = new(true)
	}
	if p.Type != "" {
		m.Type = new(p.Type)
	}
	return m
}

// SecretMask stands in answers for the value of a secret configuration property, as in AWS.
const SecretMask = "****"

// Mask returns a copy of an action's configuration with the values of the type's secret
// properties replaced by SecretMask.
func (t ActionType) Mask(config map[string]string) map[string]string {
	out := maps.Clone(config)
	for _, p := range t.Properties {
		if _, ok := out[p.Name]; ok && p.Secret {
			out[p.Name] = SecretMask
		}
	}
	return out
}

// Custom describes a custom action type, declared by an account, as the catalog describes its
// own types.
func Custom(at model.ActionType) ActionType {
	t := ActionType{
		Category: *at.Id.Category, Owner: *at.Id.Owner, Provider: *at.Id.Provider, Version: *at.Id.Version,
		MinInputs: *at.InputArtifactDetails.MinimumCount, MaxInputs: *at.InputArtifactDetails.MaximumCount,
		MinOutputs: *at.OutputArtifactDetails.MinimumCount, MaxOutputs: *at.OutputArtifactDetails.MaximumCount,
	}
	if set := at.Settings; set != nil {
		if set.EntityUrlTemplate != nil {
			t.EntityURL = *set.EntityUrlTemplate
		}
		if set.RevisionUrlTemplate != nil {
			t.RevisionURL = *set.RevisionUrlTemplate
		}
	}
	for _, p := range at.ActionConfigurationProperties {
		t.Properties = append(t.Properties, Property{
			Name: *p.Name, Required: *p.Required, Key: *p.Key, Secret: *p.Secret, Queryable: p.Queryable != nil && *p.Queryable,
		})
	}
	return t
}

// urlPlaceholder matches {Config:Key}, {Region} and {RevisionId} in a URL template.
var urlPlaceholder = regexp.MustCompile(`\{(Config:[A-Za-z0-9_-]+|Region|RevisionId)\}`)

// ExpandURL fills a URL template in with an action's configuration, its region and its revision.
// A template whose placeholders cannot all be filled, or that names a masked secret, gives "",
// not a link to the wrong place; pass the configuration masked (ActionType.Mask).
func ExpandURL(template, region string, config map[string]string, revision string) string {
	if template == "" {
		return ""
	}
	complete := true
	out := urlPlaceholder.ReplaceAllStringFunc(template, func(m string) string {
		name := m[1 : len(m)-1]
		var v string
		switch {
		case name == "Region":
			v = region
		case name == "RevisionId":
			v = revision
		default:
			v = config[strings.TrimPrefix(name, "Config:")]
		}
		if v == "" || v == SecretMask {
			complete = false
		}
		return v
	})
	if !complete {
		return ""
	}
	return out
}
