import { useCallback, useEffect, useRef, useState } from 'react';
import { NavLink, Route, Routes, useLocation } from 'react-router';
import { ApiError, onUnauthorized, readMe, signIn, signOut, type Me } from './api';
import { SignIn } from './SignIn';
import { Overview } from './Overview';
import { MessageList } from './MessageList';
import { MessagePage } from './MessagePage';
import { useTitle } from './hooks';

type Session = { state: 'checking' } | { state: 'signed-out' } | { state: 'signed-in'; me: Me } | { state: 'broken'; error: string };

/** A `#token=` in the address (as `outbox-sync dev` prints it), taken out of the address bar at once. */
function takeFragmentToken(): string | null {
  const match = /^#token=(.+)$/.exec(window.location.hash);
  if (!match) return null;
  window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search);
  return decodeURIComponent(match[1]);
}

export function App() {
  const [session, setSession] = useState<Session>({ state: 'checking' });

  const loadMe = useCallback(async () => {
    try {
      setSession({ state: 'signed-in', me: await readMe() });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) setSession({ state: 'signed-out' });
      else setSession({ state: 'broken', error: (error as Error).message });
    }
  }, []);

  useEffect(() => {
    onUnauthorized(() => setSession({ state: 'signed-out' }));
    const start = () => {
      const token = takeFragmentToken();
      // A wrong fragment token falls through to /api/me, which shows the sign-in form.
      return (token ? signIn(token).catch(() => {}) : Promise.resolve()).then(loadMe);
    };
    void start();
    // A link with a token opened over an open page changes only the fragment: the page stays loaded.
    const onHash = () => {
      if (window.location.hash.startsWith('#token=')) void start();
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, [loadMe]);

  const signInWith = async (token: string) => {
    await signIn(token);
    await loadMe();
  };

  const leave = async () => {
    await signOut().catch(() => {});
    setSession({ state: 'signed-out' });
  };

  if (session.state === 'checking') return <p className="loading">Loading…</p>;
  if (session.state === 'broken') {
    return (
      <main className="page narrow">
        <h1>outbox-sync</h1>
        <p role="alert" className="error">The outbox page cannot reach its server: {session.error}</p>
        <button type="button" onClick={loadMe}>
          Try again
        </button>
      </main>
    );
  }
  if (session.state === 'signed-out') return <SignIn onSignIn={signInWith} />;
  return <SignedIn me={session.me} onSignOut={leave} />;
}

function SignedIn({ me, onSignOut }: { me: Me; onSignOut: () => void }) {
  const main = useRef<HTMLElement>(null);
  const { pathname } = useLocation();
  const first = useRef(true);

  // After moving to another view, start reading (and tabbing) from its content, not the old link.
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.focus();
  }, [pathname]);

  const skip = (event: React.MouseEvent) => {
    event.preventDefault();
    main.current?.focus();
  };

  return (
    <>
      <a className="skip-link" href="#content" onClick={skip}>
        Skip to content
      </a>
      <header className="site-header">
        <p className="brand">outbox-sync</p>
        <nav aria-label="Main">
          <ul>
            <li>
              <NavLink to="/" end>
                Overview
              </NavLink>
            </li>
            <li>
              <NavLink to="/messages" end>
                Failed and dead
              </NavLink>
            </li>
          </ul>
        </nav>
        <div className="who">
          {me.temporalUiUrl && (
            <a href={me.temporalUiUrl} target="_blank" rel="noopener noreferrer" className="temporal-ui">
              Temporal UI
            </a>
          )}
          <span>
            Signed in as <strong>{me.name}</strong>
            {!me.canRetry && <span className="tag">read-only</span>}
          </span>
          <button type="button" className="secondary" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="content" ref={main} tabIndex={-1} className="page">
        <Routes>
          <Route path="/" element={<Overview />} />
          <Route path="/messages" element={<MessageList canRetry={me.canRetry} />} />
          <Route path="/messages/:id" element={<MessagePage canRetry={me.canRetry} />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </>
  );
}

function NotFound() {
  useTitle('Not found');
  return (
    <>
      <h1>Not found</h1>
      <p>
        There is no such page. Go to the <NavLink to="/">overview</NavLink>.
      </p>
    </>
  );
}
