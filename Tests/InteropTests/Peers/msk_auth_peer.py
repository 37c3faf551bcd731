#!/usr/bin/env python3
"""MSK IAM authentication as two independent libraries make it, at a pinned time.

  msk_auth_peer.py iam   ACCESS SECRET TOKEN REGION HOST UNIX   kafka-python's AWS_MSK_IAM first message (JSON)
  msk_auth_peer.py oauth ACCESS SECRET TOKEN REGION UNIX        aws-msk-iam-sasl-signer-python's OAUTHBEARER token

TOKEN "-" means none. The clock of each library is patched to UNIX (seconds); nothing goes on the network.
"""
import datetime
import os
import sys


def at(unix):
    return datetime.datetime.fromtimestamp(int(unix), tz=datetime.timezone.utc)


def main():
    mode = sys.argv[1]
    access, secret, token = sys.argv[2], sys.argv[3], sys.argv[4]
    token = None if token == "-" else token
    if mode == "iam":
        region, host, unix = sys.argv[5], sys.argv[6], sys.argv[7]
        import kafka.net.sasl.msk as msk

        class Clock(datetime.datetime):
            @classmethod
            def now(cls, tz=None):
                return at(unix)

        msk.datetime.datetime = Clock
        client = msk.AwsMskIamClient(host=host, access_key=access, secret_key=secret, region=region, token=token)
        sys.stdout.write(client.first_message().decode())
    elif mode == "oauth":
        region, unix = sys.argv[5], sys.argv[6]
        os.environ["AWS_ACCESS_KEY_ID"] = access
        os.environ["AWS_SECRET_ACCESS_KEY"] = secret
        if token:
            os.environ["AWS_SESSION_TOKEN"] = token
        else:
            os.environ.pop("AWS_SESSION_TOKEN", None)
        for k in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            os.environ.pop(k, None)
        import botocore.auth
        botocore.auth.get_current_datetime = lambda: at(unix).replace(tzinfo=None)
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
        tok, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        sys.stdout.write(tok)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
