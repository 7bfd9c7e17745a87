package mysql

// MigrateTo lets the tests stop the migrations at a version.
var MigrateTo = migrateTo
