// Package deploy holds the container topology's files and the test that checks docker-compose.yml.
package deploy
