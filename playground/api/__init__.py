"""The REST API: protocol models, thin routes over the service, and the error handlers."""
