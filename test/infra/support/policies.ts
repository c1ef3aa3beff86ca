import type { Stack } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import type * as iam from 'aws-cdk-lib/aws-iam';

/** One IAM statement, normalised: actions sorted, resources as an array. */
export interface NormalisedStatement {
  readonly effect: string;
  readonly actions: string[];
  readonly resources: unknown[];
  readonly condition?: unknown;
}

interface PolicyResource {
  readonly Properties: {
    readonly Roles?: unknown[];
    readonly PolicyDocument: { readonly Statement: Record<string, unknown>[] };
  };
}

interface RoleResource {
  readonly Properties: {
    readonly Policies?: { readonly PolicyDocument: { readonly Statement: Record<string, unknown>[] } }[];
    readonly ManagedPolicyArns?: unknown[];
    readonly AssumeRolePolicyDocument: { readonly Statement: Record<string, unknown>[] };
  };
}

const asArray = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);

function normalise(statement: Record<string, unknown>): NormalisedStatement {
  return {
    effect: String(statement.Effect),
    actions: asArray(statement.Action).map(String).sort(),
    resources: asArray(statement.Resource),
    ...(statement.Condition !== undefined ? { condition: statement.Condition } : {}),
  };
}

/** The logical id of a role in the template. */
export function roleLogicalId(stack: Stack, role: iam.IRole): string {
  const cfn = role.node.defaultChild;
  if (cfn === undefined) throw new Error(`role ${role.node.path} has no CloudFormation resource`);
  return stack.getLogicalId(cfn as Parameters<Stack['getLogicalId']>[0]);
}

/** Every statement granted to a role: its inline policies and every AWS::IAM::Policy attached to it. */
export function roleStatements(template: Template, roleId: string): NormalisedStatement[] {
  const role = template.findResources('AWS::IAM::Role')[roleId] as RoleResource | undefined;
  if (role === undefined) throw new Error(`no role ${roleId}`);
  const inline = (role.Properties.Policies ?? []).flatMap((p) => p.PolicyDocument.Statement);
  const attached = Object.values(template.findResources('AWS::IAM::Policy') as Record<string, PolicyResource>)
    .filter((policy) =>
      (policy.Properties.Roles ?? []).some((r) => JSON.stringify(r) === JSON.stringify({ Ref: roleId })),
    )
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
  return [...inline, ...attached].map(normalise);
}

/** The sorted set of every action a role is allowed. */
export function roleActions(template: Template, roleId: string): string[] {
  return [...new Set(roleStatements(template, roleId).flatMap((s) => s.actions))].sort();
}

/** The managed policies and trust policy of a role. */
export function roleBasics(
  template: Template,
  roleId: string,
): { managed: unknown[]; trustedServices: unknown[] } {
  const role = template.findResources('AWS::IAM::Role')[roleId] as RoleResource;
  return {
    managed: role.Properties.ManagedPolicyArns ?? [],
    trustedServices: role.Properties.AssumeRolePolicyDocument.Statement.map(
      (s) => (s.Principal as { Service?: unknown } | undefined)?.Service,
    ),
  };
}

/** Every Allow statement of every IAM policy and role in the template. */
export function allIamStatements(template: Template): NormalisedStatement[] {
  const roles = Object.keys(template.findResources('AWS::IAM::Role'));
  return roles.flatMap((id) => roleStatements(template, id)).filter((s) => s.effect === 'Allow');
}
