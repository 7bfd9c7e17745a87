# Makes the MySQL user every process of the shop runs as: it reads and writes the
# rows of the shop's database, and changes no table, no other database, no user.
#
# The mysql image sources this file (docker-entrypoint-initdb.d) on the first start
# of an empty data volume, after it made MYSQL_DATABASE and MYSQL_USER; it grants
# MYSQL_USER everything on that database, which makes it the user that migrates the
# schema. Sourced, not run: docker_process_sql, the entrypoint's client as root, is
# one of the entrypoint's functions. deploy/mysql_init_test.go runs this file
# against MariaDB.

: "${MYSQL_DATABASE:?MYSQL_DATABASE: the database of the shop}"
: "${APP_USER:?APP_USER: the name of the MySQL user of the shop}"
: "${APP_PASSWORD:?APP_PASSWORD: the password of the MySQL user of the shop}"

# sql_string quotes $1 as an SQL string literal.
sql_string() {
	local s=$1 q="'" bs='\'
	s=${s//"$bs"/"$bs$bs"}
	s=${s//"$q"/"$q$q"}
	printf "'%s'" "$s"
}

# In GRANT a database name is a pattern: its underscores are escaped (as the
# image does for MYSQL_USER), so the grant names this database only.
app_db=${MYSQL_DATABASE//_/'\_'}
app_user="$(sql_string "$APP_USER")@'%'"
docker_process_sql --database=mysql <<EOSQL
CREATE USER $app_user IDENTIFIED BY $(sql_string "$APP_PASSWORD");
GRANT SELECT, INSERT, UPDATE, DELETE ON \`$app_db\`.* TO $app_user;
EOSQL
unset app_db app_user
