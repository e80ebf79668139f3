import { query } from "../api.ts";

export function SignIn({ returnTo }: { returnTo: string }) {
  return (
    <main id="main" class="sign-in">
      <h1>Stagely</h1>
      <p>Preview environments for every pull request, on your own cloud.</p>
      <p>
        <a class="button primary" href={`/v1/auth/github${query({ return_to: returnTo })}`}>
          Sign in with GitHub
        </a>
      </p>
      <p class="muted">
        Running Stagely on your machine? Open the one-time sign-in link that <code>npm run dev</code> printed.
      </p>
    </main>
  );
}
