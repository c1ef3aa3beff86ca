import { App } from 'aws-cdk-lib';
import { buildTokenKeeperApp } from '../lib/app';

// Builds the stack from context (`cdk deploy -c transmitBaseUrl=... -c alarmEmail=...`), nothing else.
buildTokenKeeperApp(new App(), {
  account: process.env.CDK_DEFAULT_ACCOUNT,
  region: process.env.CDK_DEFAULT_REGION,
});
