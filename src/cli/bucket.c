/*
 * bucket.c - `zero bucket`: operator commands on the configured bucket.
 */
#include "cli/cli.h"

#include <stdio.h>

int cli_bucket(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "zero bucket: not implemented yet\n");
	return 1;
}
