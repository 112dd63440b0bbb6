#!/bin/sh
# Writes the Mosquitto password file from the environment (the .env of the compose stack), then runs
# the command it was given (the broker). Every user of the ACL needs its password variable.
#   init-passwords.sh PASSWORD_FILE [command ...]
set -eu
file=$1
shift
: > "$file"
for user in agent gateway controller viewer; do
  var=$(printf 'MQTT_%s_PASSWORD' "$user" | tr '[:lower:]' '[:upper:]')
  eval "password=\${$var:-}"
  if [ -z "$password" ]; then
    echo "init-passwords: $var is not set (see docker/.env.example)" >&2
    exit 1
  fi
  mosquitto_passwd -b "$file" "$user" "$password"
done
chmod 0700 "$file"
chown mosquitto:mosquitto "$file" 2>/dev/null || true  # the broker reads it as that user
[ "$#" -eq 0 ] || exec "$@"
