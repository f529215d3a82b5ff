#!/usr/bin/env bash
# The original tutorial's thirteen steps as an aws CLI script, written from its description:
# the baseline deploy-bench times `tokendeploy` against. Not a tool: no checks, no converging,
# exactly what a reader of the tutorial would type.
#
#   deploy.sh up NAME ZIP    deploys NAME, prints the invoke URL
#   deploy.sh down NAME      deletes it
#
# Uses the aws CLI's usual settings (AWS_REGION, AWS_ENDPOINT_URL, credentials).
set -euo pipefail
action=$1 name=$2
role="$name-tutorial-role"

if [ "$action" = up ]; then
  zip=$3
  # 1. the execution role, trusted by Lambda
  role_arn=$(aws iam create-role --role-name "$role" --query Role.Arn --output text \
    --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}')
  # 2. allowed to write its logs
  aws iam attach-role-policy --role-name "$role" \
    --policy-arn arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
  # 3. the function, with the key and secret in its environment
  function_arn=$(aws lambda create-function --function-name "$name" --runtime provided.al2023 \
    --handler bootstrap --architectures x86_64 --memory-size 256 --timeout 10 --role "$role_arn" \
    --zip-file "fileb://$zip" --query FunctionArn --output text \
    --environment 'Variables={CONSUMER_KEY=key,CONSUMER_SECRET=secret,ALLOWED_ORIGINS=*}')
  # 4. wait until it is active
  aws lambda wait function-active-v2 --function-name "$name"
  # 5. the REST API
  api_id=$(aws apigateway create-rest-api --name "$name" --endpoint-configuration types=REGIONAL \
    --query id --output text)
  # 6. its root resource
  root_id=$(aws apigateway get-resources --rest-api-id "$api_id" --query 'items[?path==`/`].id' \
    --output text)
  # 7. {proxy+} under it
  proxy_id=$(aws apigateway create-resource --rest-api-id "$api_id" --parent-id "$root_id" \
    --path-part '{proxy+}' --query id --output text)
  # 8. GET on it
  aws apigateway put-method --rest-api-id "$api_id" --resource-id "$proxy_id" --http-method GET \
    --authorization-type NONE > /dev/null
  # 9. sent to the function (AWS_PROXY)
  region=$(aws configure get region || echo "$AWS_REGION")
  aws apigateway put-integration --rest-api-id "$api_id" --resource-id "$proxy_id" \
    --http-method GET --type AWS_PROXY --integration-http-method POST \
    --uri "arn:aws:apigateway:$region:lambda:path/2015-03-31/functions/$function_arn/invocations" > /dev/null
  # 10. deployed to stage prod
  aws apigateway create-deployment --rest-api-id "$api_id" --stage-name prod > /dev/null
  # 11. the account, for the permission's source ARN
  account=$(aws sts get-caller-identity --query Account --output text)
  # 12. API Gateway may invoke the function
  aws lambda add-permission --function-name "$name" --statement-id apigateway-get \
    --action lambda:InvokeFunction --principal apigateway.amazonaws.com \
    --source-arn "arn:aws:execute-api:$region:$account:$api_id/prod/GET/*" > /dev/null
  # 13. the invoke URL
  echo "https://$api_id.execute-api.$region.amazonaws.com/prod/token"
else
  for api_id in $(aws apigateway get-rest-apis --query "items[?name=='$name'].id" --output text); do
    aws apigateway delete-rest-api --rest-api-id "$api_id"
  done
  aws lambda delete-function --function-name "$name" > /dev/null
  aws iam detach-role-policy --role-name "$role" \
    --policy-arn arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
  aws iam delete-role --role-name "$role"
fi
