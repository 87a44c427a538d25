"""What the API and the workers share: settings, database, storage, job state and job specs."""
