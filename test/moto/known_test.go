package moto

// The differences between the sandbox and moto 5.2.1 that stay, each with
// the AWS documentation that settles which side is right. Where the sandbox
// was wrong it was fixed instead (PutSecretValue's first version gets
// AWSCURRENT; DescribeSecret leaves out RotationEnabled for a secret never
// configured for rotation). A listed difference that stops occurring fails
// the test, so the list cannot go stale.

const (
	iamCreateUser   = "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateUser.html"
	iamLastUsed     = "https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetAccessKeyLastUsed.html"
	iamTag          = "https://docs.aws.amazon.com/IAM/latest/APIReference/API_Tag.html"
	orgListAccounts = "https://docs.aws.amazon.com/organizations/latest/APIReference/API_ListAccounts.html"
	smCreate        = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html"
	smDescribe      = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html"
	smGet           = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html"
	smPut           = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutSecretValue.html"
	smStage         = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_UpdateSecretVersionStage.html"
	smListVersions  = "https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ListSecretVersionIds.html"
	smDeleteAndName = "https://repost.aws/knowledge-center/delete-secrets-manager-secret"
	stsAssumeRole   = "https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html"
	stsCallerID     = "https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html"
	kmsKeyMetadata  = "https://docs.aws.amazon.com/kms/latest/APIReference/API_KeyMetadata.html"
	kmsCreateKey    = "https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html"
	kmsGenerateMac  = "https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateMac.html"
	kmsCLIGenMac    = "https://docs.aws.amazon.com/cli/latest/reference/kms/generate-mac.html"
)

// silent is what right says where the API reference does not say which
// answer AWS gives: the sandbox's is kept, for the reason given.
const silent = "undocumented, sandbox kept"

var knownDiffs = []knownDiff{
	// STS
	{test: "TestAssumeRole", step: "AssumeRole in the caller's account", right: "sandbox is right",
		why: "PackedPolicySize is \"the packed size of the session policies and session tags combined passed in the request\": with none passed the sandbox leaves it out; moto answers 6 whatever was passed", doc: stsAssumeRole},
	{test: "TestAssumeRole", step: "AssumeRole of another account's role", right: "sandbox is right",
		why: "PackedPolicySize, as above", doc: stsAssumeRole},
	{test: "TestAssumeRole", step: "AssumeRole with an invalid session name", right: "sandbox is right",
		why: "RoleSessionName must match [\\w+=,.@-]* (2 to 64 characters); moto takes a space", doc: stsAssumeRole},
	{test: "TestAssumeRole", step: "AssumeRole with DurationSeconds under 900", right: "sandbox is right",
		why: "DurationSeconds: minimum value of 900; moto takes 899", doc: stsAssumeRole},
	{test: "TestAssumeRole", step: "GetCallerIdentity of the same-account session", right: "sandbox is right",
		why: "a role session's UserId is the AssumedRoleId AssumeRole answered (role id:session name); moto makes up another role id", doc: stsCallerID},
	{test: "TestAssumeRole", step: "GetCallerIdentity of the cross-account session", right: "sandbox is right",
		why: "a role session's UserId is the AssumedRoleId AssumeRole answered (role id:session name); moto makes up another role id", doc: stsCallerID},
	// IAM
	{test: "TestIAM", step: "CreateUser with a path not ending in /", right: "sandbox is right",
		why: "Path must match (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F), beginning and ending with /; moto takes /service", doc: iamCreateUser},
	{test: "TestIAM", step: "CreateUser with an invalid name", right: "sandbox is right",
		why: "UserName must match [\\w+=,.@-]+; moto takes a space", doc: iamCreateUser},
	{test: "TestIAM", step: "GetAccessKeyLastUsed of a missing key", right: "sandbox is right",
		why: "the reference models no NoSuchEntity for GetAccessKeyLastUsed (only the common errors): IAM does not say whether a key it will not show exists; moto answers NoSuchEntity/404 from an older model",
		doc: iamLastUsed},

	{test: "TestCredentialReport", step: "TagUser with an apostrophe in the value", right: "sandbox is right",
		why: "a tag Value must match [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*; moto's TagUser checks nothing", doc: iamTag},
	{test: "TestCredentialReport", step: "TagUser with a value of 257 characters", right: "sandbox is right",
		why: "a tag Value has at most 256 characters; moto's TagUser checks nothing (its CreateUser does)", doc: iamTag},
	{test: "TestCredentialReport", step: "TagUser with a comma in the key", right: "sandbox is right",
		why: "a tag Key must match [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+; moto's TagUser checks nothing", doc: iamTag},

	{test: "TestOrganizations", step: "ListAccounts without an organization", right: "sandbox is right",
		why: "ListAccounts of an account in no organization fails with AWSOrganizationsNotInUseException; moto lists no accounts", doc: orgListAccounts},

	// Secrets Manager: refusals moto does not make.
	{test: "TestSecretsManager", step: "CreateSecret with an invalid name", right: "sandbox is right",
		why: "a name may hold letters, digits and /_+=.@- only; moto takes a space", doc: smCreate},
	{test: "TestSecretsManager", step: "CreateSecret with a string and a binary", right: "sandbox is right",
		why: "SecretString and SecretBinary: \"You must include SecretBinary or SecretString, but not both\"; moto takes both", doc: smCreate},
	{test: "TestSecretsManager", step: "CreateSecret of a name scheduled for deletion", right: "sandbox is right",
		why: "AWS answers InvalidRequestException \"You can't create this secret because a secret with this name is already scheduled for deletion\"; moto ResourceExistsException",
		doc: smDeleteAndName},
	{test: "TestSecretsManager", step: "PutSecretValue to a secret scheduled for deletion", right: "sandbox is right",
		why: "InvalidRequestException: \"The secret is scheduled for deletion\"; moto adds the version", doc: smPut},
	{test: "TestSecretsManager", step: "UpdateSecretVersionStage of a secret scheduled for deletion", right: "sandbox is right",
		why: "InvalidRequestException: \"The secret is scheduled for deletion\"; moto moves the label", doc: smStage},
	{test: "TestSecretsManager", step: "ListSecretVersionIds", right: "sandbox is right",
		why: "IncludeDeprecated (default false) \"Specifies whether to include versions of secrets that don't have any staging labels attached to them\"; moto lists deprecated versions without it", doc: smListVersions},
	{test: "TestSecretsManager", step: "ListSecretVersionIds of a missing secret", right: "sandbox is right",
		why: "ResourceNotFoundException is the documented error; moto fails with a 500 and an HTML page", doc: smListVersions},

	{test: "TestSecretsManager", step: "GetSecretValue after RestoreSecret", right: "sandbox is right",
		why: "without VersionId or VersionStage GetSecretValue reads AWSCURRENT (\"Secrets Manager defaults to AWSCURRENT\"); moto reads the version of the last write to AWSCURRENT, not the one UpdateSecretVersionStage moved it to",
		doc: smGet},

	// Secrets Manager: UpdateSecretVersionStage.
	{test: "TestSecretsManager", step: "UpdateSecretVersionStage removing AWSCURRENT", right: silent,
		why: "the reference only documents moving AWSCURRENT (\"You can move the AWSCURRENT staging label to this version\") and every secret's reads default to it; moto removes it and leaves the secret without a current version",
		doc: smStage},
	{test: "TestSecretsManager", step: "UpdateSecretVersionStage without a version", right: silent,
		why: "neither MoveToVersionId nor RemoveFromVersionId names a version to change; moto answers success and changes nothing", doc: smStage},
	{test: "TestSecretsManager", step: "UpdateSecretVersionStage to a missing version", right: silent,
		why: "the sandbox answers ResourceNotFoundException (\"Secrets Manager can't find the resource that you asked for\"), moto InvalidParameterException; both refuse and change nothing", doc: smStage},
	{test: "TestSecretsManager", step: "UpdateSecretVersionStage from a missing version", right: silent,
		why: "as above, for RemoveFromVersionId", doc: smStage},
	{test: "TestSecretsManager", step: "UpdateSecretVersionStage moving a held label without RemoveFromVersionId", right: "sandbox is right",
		why: "RemoveFromVersionId: \"If the label is attached and you either do not specify this parameter, or the version ID does not match, then the operation fails\"; moto attaches the label to a second version",
		doc: smStage},
	{test: "TestSecretsManager", step: "DescribeSecret after moving a label onto its holder", right: silent,
		why: "\"Each staging label can be attached to only one version at a time\": the sandbox leaves the label where it is; moto attaches it to the same version twice",
		doc: smStage},
	{test: "TestSecretsManager", step: "DescribeSecret after moving AWSCURRENT from and to its holder", right: silent,
		why: "AWSCURRENT does not move, so neither does AWSPREVIOUS in the sandbox; moto takes AWSPREVIOUS off every version",
		doc: smStage},
	{test: "TestSecretsManager", step: "DescribeSecret after PutSecretValue moved AWSCURRENT off a version with other labels", right: "sandbox is right",
		why: "PutSecretValue moves AWSCURRENT and AWSPREVIOUS and the labels named in VersionStages; moto replaces every label of the old current version with AWSPREVIOUS (its AWSPENDING is lost)",
		doc: smPut},
	{test: "TestSecretsManager", step: "GetSecretValue by default after UpdateSecretVersionStage moved AWSCURRENT", right: "sandbox is right",
		why: "see GetSecretValue after RestoreSecret", doc: smGet},
	{test: "TestSecretsManager", step: "DescribeSecret after PutSecretValue following UpdateSecretVersionStage", right: "sandbox is right",
		why: "\"Secrets Manager also automatically moves the staging label AWSPREVIOUS to the version that AWSCURRENT was removed from\"; moto demotes the version last written as current, which UpdateSecretVersionStage had taken AWSCURRENT from, and leaves two versions AWSCURRENT",
		doc: smPut},
	{test: "TestSecretsManager", step: "DescribeSecret after PutSecretValue to AWSCURRENT and a held label", right: "sandbox is right",
		why: "VersionStages: \"If you specify a staging label that's already associated with a different version of the same secret, then Secrets Manager removes the label from the other version\"; with AWSCURRENT among them moto leaves AWSPENDING on both",
		doc: smPut},
	{test: "TestSecretsManager", step: "PutSecretValue retried with the token of an AWSPENDING version", right: "sandbox is right",
		why: "\"If you call this operation with a ClientRequestToken that matches an existing version's VersionId, and you specify the same secret data, the operation succeeds but does nothing\"; moto writes the version again, as AWSCURRENT",
		doc: smPut},
	{test: "TestSecretsManager", step: "DescribeSecret after retrying an AWSPENDING version's token", right: "sandbox is right",
		why: "as above", doc: smPut},

	{test: "TestSecretsManager", step: "UpdateSecretVersionStage to a missing version from the label's holder", right: silent,
		why: "as UpdateSecretVersionStage to a missing version", doc: smStage},
	{test: "TestSecretsManager", step: "DescribeSecret after a refused UpdateSecretVersionStage", right: "sandbox is right",
		why: "a refused call changes nothing; moto takes the label off RemoveFromVersionId before it finds that MoveToVersionId does not exist, and then refuses",
		doc: smStage},

	// The random walk: the same refusals with other codes.
	{test: "TestSecretsManagerStageWalk", step: "GetSecretValue by default after UpdateSecretVersionStage moved AWSCURRENT", right: "sandbox is right",
		why: "see TestSecretsManager's GetSecretValue after RestoreSecret", doc: smGet},
	{test: "TestSecretsManagerStageWalk", step: "UpdateSecretVersionStage to a missing version", right: silent,
		why: "see TestSecretsManager", doc: smStage},
	{test: "TestSecretsManagerStageWalk", step: "UpdateSecretVersionStage from a missing version", right: silent,
		why: "see TestSecretsManager", doc: smStage},
	// KMS HMAC keys
	{test: "TestKMSMac", step: "CreateKey HMAC_256", right: "sandbox is right",
		why: "KeyMetadata.MacAlgorithms is present only for GENERATE_VERIFY_MAC keys and EncryptionAlgorithms only for ENCRYPT_DECRYPT keys; moto gives an HMAC key RSAES_OAEP encryption algorithms and no MacAlgorithms", doc: kmsKeyMetadata},
	{test: "TestKMSMac", step: "CreateKey HMAC_512", right: "sandbox is right",
		why: "as for HMAC_256", doc: kmsKeyMetadata},
	{test: "TestKMSMac", step: "DescribeKey of the HMAC key", right: "sandbox is right",
		why: "as for CreateKey HMAC_256", doc: kmsKeyMetadata},
	{test: "TestKMSMac", step: "CreateKey default", right: "sandbox is right",
		why: "KeyUsage defaults to ENCRYPT_DECRYPT; moto leaves it empty", doc: kmsCreateKey},
	{test: "TestKMSMac", step: "GenerateMac", right: "sandbox is right",
		why: "KeyId answered is the key ARN (the CLI reference's example); moto answers the key id", doc: kmsCLIGenMac},
	{test: "TestKMSMac", step: "GenerateMac HMAC_SHA_512 with an HMAC_512 key", right: "sandbox is right",
		why: "as for GenerateMac", doc: kmsCLIGenMac},
	{test: "TestKMSMac", step: "GenerateMac with an algorithm the key does not support", right: "sandbox is right",
		why: "the MacAlgorithm must be one the key supports (DescribeKey's MacAlgorithms), else InvalidKeyUsageException; moto computes an HMAC_SHA_512 with an HMAC_256 key", doc: kmsGenerateMac},
}

// smTests are the tests that compare Secrets Manager answers.
var smTests = []string{"TestSecretsManager", "TestSecretsManagerStageWalk"}

var knownFields = []knownField{
	{tests: smTests, op: "DescribeSecret", field: "LastAccessedDate", right: "sandbox is right",
		why: "\"This field is omitted if the secret has never been retrieved\": the sandbox keeps the day of the last GetSecretValue, moto never sends it", doc: smDescribe},
	{tests: smTests, op: "DescribeSecret", field: "VersionIdsToStages", emptyEntries: true, right: "sandbox is right",
		why: "VersionIdsToStages lists \"the versions of the secret that have staging labels attached\"; moto lists deprecated versions too, with no labels", doc: smDescribe},
	{tests: smTests, op: "ListSecretVersionIds", field: "ARN", right: "sandbox is right",
		why: "ARN is the secret's ARN; moto sends its name", doc: smListVersions},
	{tests: smTests, op: "ListSecretVersionIds", field: "NextToken", right: "sandbox is right",
		why: "NextToken is present only when there are more versions; moto sends an empty one", doc: smListVersions},
	{tests: smTests, op: "ListSecretVersionIds", field: "LastAccessedDate", right: "sandbox is right",
		why: "a version's LastAccessedDate is the day it was last read; moto gives one to versions never read", doc: smListVersions},
	{tests: smTests, op: "", field: "VersionStages", emptyOnly: true, right: silent,
		why: "a deprecated version has no labels: moto sends an empty VersionStages (ListSecretVersionIds, GetSecretValue, a retried PutSecretValue), the sandbox none; the SDK reads both as no labels", doc: smListVersions},
}

// Every Secrets Manager error is HTTP 400 in the API reference (each
// operation's Errors section); moto answers some with 404.
var knownStatuses = []knownStatus{
	{code: "ResourceNotFoundException", aws: 400, moto: 404, right: "sandbox is right", doc: smDescribe},
	// moto's answer to a VersionId and VersionStage that do not meet in
	// GetSecretValue (the sandbox's code followed moto's here).
	{code: "InvalidRequestException", aws: 400, moto: 404, right: "sandbox is right", doc: smGet},
}
