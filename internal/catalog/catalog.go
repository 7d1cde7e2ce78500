// Package catalog lists the action types and rule types that CodePipeline itself provides (owners
// AWS and ThirdParty): their configuration properties and how many artifacts they take. It is the
// reference the pipeline validator checks declarations against and ListActionTypes and
// ListRuleTypes answer from. Custom action types live in the store, not here.
package catalog

import (
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
}

// RuleType is a rule type CodePipeline provides for stage conditions.
type RuleType struct {
	Provider   string
	Version    string
	Properties []Property
	MinInputs  int
	MaxInputs  int
}

func req(name string) Property    { return Property{Name: name, Required: true, Key: true} }
func opt(name string) Property    { return Property{Name: name} }
func secret(name string) Property { return Property{Name: name, Required: true, Secret: true} }

var actionTypes = []ActionType{
	{Category: model.ActionCategorySource, Owner: model.ActionOwnerAws, Provider: "S3", Version: "1",
		Properties: []Property{req("S3Bucket"), req("S3ObjectKey"), opt("PollForSourceChanges"), opt("AllowOverrideForS3ObjectKey")},
		MaxOutputs: 1, MinOutputs: 1},
	{Category: model.ActionCategorySource, Owner: model.ActionOwnerAws, Provider: "CodeCommit", Version: "1",
		Properties: []Property{req("RepositoryName"), req("BranchName"), opt("PollForSourceChanges"), opt("OutputArtifactFormat")},
		MaxOutputs: 1, MinOutputs: 1},
	{Category: model.ActionCategorySource, Owner: model.ActionOwnerAws, Provider: "ECR", Version: "1",
		Properties: []Property{req("RepositoryName"), opt("ImageTag")},
		MaxOutputs: 1, MinOutputs: 1},
	{Category: model.ActionCategorySource, Owner: model.ActionOwnerAws, Provider: "CodeStarSourceConnection", Version: "1",
		Properties: []Property{req("ConnectionArn"), req("FullRepositoryId"), req("BranchName"), opt("OutputArtifactFormat"), opt("DetectChanges")},
		MaxOutputs: 1, MinOutputs: 1},
	{Category: model.ActionCategorySource, Owner: model.ActionOwnerThirdParty, Provider: "GitHub", Version: "1",
		Properties: []Property{req("Owner"), req("Repo"), req("Branch"), secret("OAuthToken"), opt("PollForSourceChanges")},
		MaxOutputs: 1, MinOutputs: 1},
	{Category: model.ActionCategoryBuild, Owner: model.ActionOwnerAws, Provider: "CodeBuild", Version: "1",
		Properties: []Property{req("ProjectName"), opt("PrimarySource"), opt("EnvironmentVariables"), opt("BatchEnabled"), opt("CombineArtifacts")},
		MinInputs:  1, MaxInputs: 5, MaxOutputs: 5},
	{Category: model.ActionCategoryTest, Owner: model.ActionOwnerAws, Provider: "CodeBuild", Version: "1",
		Properties: []Property{req("ProjectName"), opt("PrimarySource"), opt("EnvironmentVariables"), opt("BatchEnabled"), opt("CombineArtifacts")},
		MinInputs:  1, MaxInputs: 5, MaxOutputs: 5},
	{Category: model.ActionCategoryBuild, Owner: model.ActionOwnerAws, Provider: "ECRBuildAndPublish", Version: "1",
		Properties: []Property{req("ECRRepositoryName"), opt("DockerFilePath"), opt("ImageTags"), opt("RegistryType")},
		MinInputs:  1, MaxInputs: 1, V2Only: true},
	{Category: model.ActionCategoryTest, Owner: model.ActionOwnerAws, Provider: "DeviceFarm", Version: "1",
		Properties: []Property{req("ProjectId"), req("DevicePoolArn"), req("AppType"), req("App"), req("TestType"), opt("Test"),
			opt("RecordAppPerformanceData"), opt("RecordVideo"), opt("FuzzEventCount"), opt("FuzzEventThrottle"), opt("FuzzRandomizerSeed"), opt("CustomHostMachineArtifacts"), opt("CustomDeviceArtifacts")},
		MinInputs: 1, MaxInputs: 1},
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "S3", Version: "1",
		Properties: []Property{req("BucketName"), req("Extract"), opt("ObjectKey"), opt("KMSEncryptionKeyARN"), opt("CannedACL"), opt("CacheControl")},
		MinInputs:  1, MaxInputs: 1},
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "CloudFormation", Version: "1",
		Properties: []Property{req("ActionMode"), req("StackName"), opt("Capabilities"), opt("ChangeSetName"), opt("ParameterOverrides"), opt("RoleArn"), opt("TemplatePath"), opt("TemplateConfiguration"), opt("OutputFileName")},
		MaxInputs:  10, MaxOutputs: 1},
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "CloudFormationStackSet", Version: "1",
		Properties: []Property{req("StackSetName"), req("TemplatePath"), req("DeploymentTargets"), opt("Description"), opt("Parameters"), opt("Capabilities"), opt("PermissionModel"), opt("AdministrationRoleArn"), opt("ExecutionRoleName"), opt("OrganizationsAutoDeployment"), opt("Regions"), opt("FailureTolerancePercentage"), opt("MaxConcurrentPercentage")},
		MinInputs:  1, MaxInputs: 10},
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "CloudFormationStackInstances", Version: "1",
		Properties: []Property{req("StackSetName"), req("DeploymentTargets"), req("Regions"), opt("ParameterOverrides"), opt("FailureTolerancePercentage"), opt("MaxConcurrentPercentage")},
		MaxInputs:  10},
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "CodeDeploy", Version: "1",
		Properties: []Property{req("ApplicationName"), req("DeploymentGroupName")},
		MinInputs:  1, MaxInputs: 1},
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "CodeDeployToECS", Version: "1",
		Properties: []Property{req("ApplicationName"), req("DeploymentGroupName"), req("TaskDefinitionTemplateArtifact"), req("AppSpecTemplateArtifact"),
			opt("TaskDefinitionTemplatePath"), opt("AppSpecTemplatePath"), opt("Image1ArtifactName"), opt("Image1ContainerName")},
		MinInputs: 1, MaxInputs: 3},
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "ECS", Version: "1",
		Properties: []Property{req("ClusterName"), req("ServiceName"), opt("FileName"), opt("DeploymentTimeout")},
		MinInputs:  1, MaxInputs: 1},
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "ElasticBeanstalk", Version: "1",
		Properties: []Property{req("ApplicationName"), req("EnvironmentName")},
		MinInputs:  1, MaxInputs: 1},
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "OpsWorks", Version: "1",
		Properties: []Property{req("Stack"), req("App"), opt("Layer"), opt("DeploymentType")},
		MinInputs:  1, MaxInputs: 1},
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "ServiceCatalog", Version: "1",
		Properties: []Property{req("ProductId"), opt("TemplateFilePath"), opt("ProductVersionName"), opt("ProductType"), opt("ProductVersionDescription"), opt("ConfigurationFilePath")},
		MinInputs:  1, MaxInputs: 1},
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "AppConfig", Version: "1",
		Properties: []Property{req("Application"), req("Environment"), req("ConfigurationProfile"), req("InputArtifactConfigurationPath"), req("DeploymentStrategy")},
		MinInputs:  1, MaxInputs: 1},
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerAws, Provider: "EKS", Version: "1",
		Properties: []Property{req("ClusterName"), opt("ManifestFiles"), opt("HelmChartLocation"), opt("HelmReleaseName"), opt("HelmValuesFiles"), opt("Namespace")},
		MinInputs:  1, MaxInputs: 1, V2Only: true},
	{Category: model.ActionCategoryDeploy, Owner: model.ActionOwnerThirdParty, Provider: "AlexaSkillsKit", Version: "1",
		Properties: []Property{req("ClientId"), secret("ClientSecret"), secret("RefreshToken"), req("SkillId")},
		MinInputs:  1, MaxInputs: 2},
	{Category: model.ActionCategoryApproval, Owner: model.ActionOwnerAws, Provider: "Manual", Version: "1",
		Properties: []Property{opt("NotificationArn"), opt("CustomData"), opt("ExternalEntityLink")}},
	{Category: model.ActionCategoryInvoke, Owner: model.ActionOwnerAws, Provider: "Lambda", Version: "1",
		Properties: []Property{req("FunctionName"), opt("UserParameters")},
		MaxInputs:  5, MaxOutputs: 5},
	{Category: model.ActionCategoryInvoke, Owner: model.ActionOwnerAws, Provider: "StepFunctions", Version: "1",
		Properties: []Property{req("StateMachineArn"), opt("ExecutionNamePrefix"), opt("InputType"), opt("Input")},
		MaxInputs:  1, MaxOutputs: 1},
	{Category: model.ActionCategoryCompute, Owner: model.ActionOwnerAws, Provider: "Commands", Version: "1",
		MinInputs: 1, MaxInputs: 10, MaxOutputs: 1, V2Only: true},
}

var ruleTypes = []RuleType{
	{Provider: "CloudWatchAlarm", Version: "1", Properties: []Property{req("AlarmName"), opt("WaitTime")}},
	{Provider: "LambdaInvoke", Version: "1", Properties: []Property{req("FunctionName"), opt("UserParameters")}, MaxInputs: 5},
	{Provider: "DeploymentWindow", Version: "1", Properties: []Property{req("Cron"), opt("TimeZone")}},
	{Provider: "VariableCheck", Version: "1", Properties: []Property{req("Variable"), req("Value"), req("Operator")}},
	{Provider: "Commands", Version: "1", MaxInputs: 1},
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
